"""Native locker bank messages: topics, compartment states, keypad codes and malformed input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from custom_components.city_ops.sources import native
from custom_components.city_ops.sources.reading import (
    MAX_PAYLOAD_BYTES,
    CompartmentReading,
    DecodeError,
    KeypadEntry,
)

BASE = "city_ops"
BANK = "locker-nord"
KEYPAD = f"{BASE}/{BANK}/keypad"


def _state(number: int | str = 1) -> str:
    return f"{BASE}/{BANK}/compartment/{number}/state"


# -- topics and commands out -------------------------------------------------------------------


def test_topics_and_lock_payloads() -> None:
    assert native.compartment_state_topic(BASE, BANK) == "city_ops/locker-nord/compartment/+/state"
    assert native.keypad_topic(BASE, BANK) == "city_ops/locker-nord/keypad"
    assert (
        native.compartment_command_topic(BASE, BANK, 7) == "city_ops/locker-nord/compartment/7/set"
    )
    assert native.lock_payload(True) == '{"lock":"LOCK"}'
    assert native.lock_payload(False) == '{"lock":"UNLOCK"}'
    assert json.loads(native.lock_payload(False)) == {"lock": "UNLOCK"}


def test_command_topic_round_trips_through_the_state_topic() -> None:
    """The number written into a command topic is the one the decoder reads back."""
    for number in (1, 9, 10, 64):
        state = native.compartment_command_topic(BASE, BANK, number).removesuffix("/set")
        reading = native.decode_locker(BASE, f"{state}/state", '{"locked": true}')
        assert isinstance(reading, CompartmentReading)
        assert reading.compartment == number


# -- compartment states --------------------------------------------------------------------------

# (topic, payload, expected reading fields)
STATES: list[tuple[str, Any, dict[str, Any]]] = [
    (_state(1), {"door": "open"}, {"compartment": 1, "door_open": True}),
    (_state(1), {"door": "closed"}, {"compartment": 1, "door_open": False}),
    (_state(2), {"door": " CLOSED "}, {"compartment": 2, "door_open": False}),
    (_state(2), {"door": "Open"}, {"compartment": 2, "door_open": True}),
    (_state(10), {"locked": True}, {"compartment": 10, "locked": True}),
    (_state(64), {"locked": False}, {"compartment": 64, "locked": False}),
    (_state(3), {"item_present": True}, {"compartment": 3, "item_present": True}),
    (_state(3), {"item_present": False}, {"compartment": 3, "item_present": False}),
    (
        _state(5),
        {"door": "closed", "locked": True, "item_present": True, "rssi": -70},
        {"compartment": 5, "door_open": False, "locked": True, "item_present": True},
    ),
    # null means "not said", as in the container schema
    (_state(5), {"door": None, "locked": True}, {"compartment": 5, "locked": True}),
    # one bad field does not spoil the others; it is counted
    (
        _state(6),
        {"door": "ajar", "locked": "yes", "item_present": True},
        {"compartment": 6, "item_present": True, "rejected": ("door", "locked")},
    ),
]


@pytest.mark.parametrize(("topic", "fields", "expected"), STATES)
def test_compartment_states(topic: str, fields: Any, expected: dict[str, Any]) -> None:
    for payload in (json.dumps(fields), json.dumps(fields).encode()):
        assert native.decode_locker(BASE, topic, payload) == CompartmentReading(
            device=BANK, **expected
        )


# Field values that are not usable: each alone leaves no measurement.
UNUSABLE: list[tuple[str, Any]] = [
    ("door", True),  # which way is true? only the two words count
    ("door", False),
    ("door", 1),
    ("door", "opened"),
    ("door", "on"),
    ("door", "open" + " " * 20),
    ("door", ["open"]),
    ("door", {"state": "open"}),
    ("locked", "true"),
    ("locked", 1),
    ("locked", 0),
    ("locked", "LOCK"),
    ("locked", [True]),
    ("item_present", "true"),
    ("item_present", 1),
    ("item_present", 1.0),
    ("item_present", {}),
]


@pytest.mark.parametrize(("field", "value"), UNUSABLE)
def test_unusable_values_are_rejected(field: str, value: Any) -> None:
    with pytest.raises(DecodeError) as err:
        native.decode_locker(BASE, _state(), json.dumps({field: value}))
    assert err.value.reason == "no_measurement"
    assert field in err.value.detail
    other = "locked" if field != "locked" else "item_present"
    reading = native.decode_locker(BASE, _state(), json.dumps({field: value, other: True}))
    assert reading == CompartmentReading(
        device=BANK, compartment=1, rejected=(field,), **{other: True}
    )


# (payload, reason)
BAD_STATE_PAYLOADS: list[tuple[bytes | str, str]] = [
    ("{}", "no_measurement"),
    ('{"temperature": 21}', "no_measurement"),
    ('{"door": null}', "no_measurement"),
    ("not json", "not_json"),
    (b"\xff\xfe", "not_json"),
    ("", "not_json"),
    ('{"door": "open"', "not_json"),
    ('["open"]', "not_object"),
    ('"open"', "not_object"),
    ("true", "not_object"),
    ("null", "not_object"),
    ("x" * (MAX_PAYLOAD_BYTES + 1), "too_large"),
    (b'{"door": "open", "pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}', "too_large"),
]


@pytest.mark.parametrize(("payload", "reason"), BAD_STATE_PAYLOADS)
def test_malformed_state_payloads(payload: bytes | str, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        native.decode_locker(BASE, _state(), payload)
    assert err.value.reason == reason


BAD_TOPICS: list[str] = [
    _state(0),
    _state(65),
    _state(100),
    _state(-1),
    _state("01"),
    _state("+1"),
    _state("1.0"),
    _state(" 1"),
    _state("٣"),  # Arabic-Indic three: int() would take it
    _state("²"),
    _state(""),
    _state("one"),
    _state(10**30),
    f"{BASE}//compartment/1/state",
    f"{BASE}/{BANK}/sub/compartment/1/state",  # a bank id is one topic level
    f"{BASE}/{BANK}/compartment/1",
    f"{BASE}/{BANK}/compartment/1/set",  # our own command
    f"{BASE}/{BANK}/compartment/1/state/x",
    f"{BASE}/{BANK}/compartments/1/state",
    f"{BASE}/{BANK}/state",  # a container's state topic
    f"{BASE}/{BANK}",
    f"{BASE}/{BANK}/keypad/x",
    f"{BASE}//keypad",
    f"{BASE}/keypad",
    f"other/{BANK}/compartment/1/state",
    f"other/{BANK}/keypad",
    f"{BASE}x/{BANK}/keypad",
    "",
]


@pytest.mark.parametrize("topic", BAD_TOPICS)
def test_unknown_topics(topic: str) -> None:
    for payload in ('{"locked": true}', "123456"):
        with pytest.raises(DecodeError) as err:
            native.decode_locker(BASE, topic, payload)
        assert err.value.reason == "unknown_topic", (topic, payload)


def test_a_base_with_levels() -> None:
    base = "stadt/city_ops"
    reading = native.decode_locker(
        base, f"{base}/{BANK}/compartment/4/state", '{"item_present": false}'
    )
    assert reading == CompartmentReading(device=BANK, compartment=4, item_present=False)
    assert native.decode_locker(base, f"{base}/{BANK}/keypad", "0000") == KeypadEntry(
        device=BANK, code="0000"
    )


# -- keypad ------------------------------------------------------------------------------------

# (payload, code)
CODES: list[tuple[bytes | str, str]] = [
    ('{"code": "123456"}', "123456"),
    (b'{"code": "123456"}', "123456"),
    ('{"code": "004711"}', "004711"),  # leading zeros are part of the code
    ('{"code": "0000"}', "0000"),
    ('{"code": "123456789012"}', "123456789012"),
    ('{"code": "123456", "keypad": 1}', "123456"),
    (' {"code": "123456"}\n', "123456"),
    ("123456", "123456"),
    (b"123456", "123456"),
    ("004711", "004711"),
    ("1234", "1234"),
    ("123456789012", "123456789012"),
    ("123456\n", "123456"),  # mosquitto_pub -l, a serial keypad's line ending
    ("\r\n 123456 \r\n", "123456"),
]


@pytest.mark.parametrize(("payload", "code"), CODES)
def test_keypad_codes(payload: bytes | str, code: str) -> None:
    entry = native.decode_locker(BASE, KEYPAD, payload)
    assert entry == KeypadEntry(device=BANK, code=code)
    assert isinstance(entry, KeypadEntry)
    assert type(entry.code) is str
    assert code not in repr(entry)


SECRET = "918273"

# (payload, reason); every payload that carries digits carries SECRET (or a part of it)
BAD_KEYPAD: list[tuple[bytes | str, str]] = [
    ('{"code": 918273}', "bad_code"),  # a number: leading zeros would be lost
    ('{"code": 918273.0}', "bad_code"),
    ('{"code": 9.18273e5}', "bad_code"),
    ('{"code": true}', "bad_code"),
    ('{"code": ["918273"]}', "bad_code"),
    ('{"code": {"digits": "918273"}}', "bad_code"),
    ('{"code": null}', "bad_code"),
    ('{"pin": "918273"}', "bad_code"),
    ("{}", "bad_code"),
    ('{"code": ""}', "bad_code"),
    ('{"code": "918"}', "bad_code"),
    ('{"code": "9182739182739"}', "bad_code"),
    ('{"code": "91827a"}', "bad_code"),
    ('{"code": " 918273"}', "bad_code"),
    ('{"code": "918 273"}', "bad_code"),
    ('{"code": "-918273"}', "bad_code"),
    ('{"code": "+918273"}', "bad_code"),
    ('{"code": "9182.73"}', "bad_code"),
    ('{"code": "٩١٨٢٧٣"}', "bad_code"),  # Arabic-Indic digits are digits to str.isdigit()
    ('{"code": "918273²"}', "bad_code"),
    ('{"code": "918273\\u0000"}', "bad_code"),
    ('"918273"', "bad_code"),  # a JSON string is neither of the two forms
    ("918a73", "bad_code"),
    ("918", "bad_code"),
    ("9182739182739", "bad_code"),
    ("918 273", "bad_code"),
    ("918273 918273", "bad_code"),
    ("", "bad_code"),
    ("   ", "bad_code"),
    ("[918273]", "bad_code"),
    ("-918273", "bad_code"),
    ("0x918273", "bad_code"),
    ("918273" + "\u00a0" * 2 + "x", "bad_code"),
    (b"918273\xff", "bad_code"),  # not UTF-8
    ("918273\udcff", "bad_code"),  # a lone surrogate from a str payload
    ('{"code": "918273"', "not_json"),
    ('{"code": "918273"} 918273', "not_json"),
    ('{"code": 0918273}', "not_json"),
    (b'{"code": "918273\xff"}', "bad_code"),  # not UTF-8, JSON or not
    ("9" * 257, "too_large"),
    ('{"code": "918273", "pad": "' + "x" * 300 + '"}', "too_large"),
    ("918273" * 1000, "too_large"),
    ("918273" * (MAX_PAYLOAD_BYTES // 6 + 1), "too_large"),
    ("€" * 86, "too_large"),  # 258 bytes in 86 characters
]


@pytest.mark.parametrize(("payload", "reason"), BAD_KEYPAD)
def test_bad_keypad_payloads_never_leak_the_code(payload: bytes | str, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        native.decode_locker(BASE, KEYPAD, payload)
    assert err.value.reason == reason
    # The runtime logs str(err): no run of the code's digits may appear in it.
    text = f"{err.value} {err.value.detail!r} {err.value.args!r}"
    for part in ("918", "182", "827", "273"):
        assert part not in text, text
    assert err.value.__cause__ is None
    assert err.value.__suppress_context__ or err.value.__context__ is None


def test_keypad_size_limit_is_inclusive() -> None:
    assert native.decode_locker(BASE, KEYPAD, " " * 244 + "123456789012") == KeypadEntry(
        device=BANK, code="123456789012"
    )
    with pytest.raises(DecodeError) as err:
        native.decode_locker(BASE, KEYPAD, " " * 245 + "123456789012")
    assert (err.value.reason, err.value.detail) == ("too_large", "257 bytes")


# (value, ok) for the shared code rule (also used for a ZHA lock's PIN)
CODE_RULE: list[tuple[object, bool]] = [
    ("1234", True),
    ("000000000000", True),
    ("123", False),
    ("1234567890123", False),
    (1234, False),
    (None, False),
    (b"1234", False),
    ("12 34", False),
    ("１２３４", False),  # full-width digits
]


def test_keypad_code_rule() -> None:
    for value, ok in CODE_RULE:
        if ok:
            assert native.keypad_code(value) == value
            continue
        with pytest.raises(DecodeError) as err:
            native.keypad_code(value)
        assert err.value.reason == "bad_code", value
        assert str(value) not in str(err.value) or value is None, value
