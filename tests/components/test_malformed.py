"""Ten thousand bad MQTT messages: nothing escapes, nothing changes, everything is counted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
import json
import logging
import random
import string
from typing import Any

from homeassistant.core import CoreState, HomeAssistant
from homeassistant.helpers import entity_registry as er
import orjson
import pytest
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message

from custom_components.city_ops.const import DOMAIN
from custom_components.city_ops.diagnostics import async_get_config_entry_diagnostics

from .conftest import SetupSite

# What these tests check is shown by entities that are disabled by default, too.
pytestmark = pytest.mark.usefixtures("every_entity_enabled")

SEED = 20_261_122
BAD_MESSAGES = 10_000
MAX_PAYLOAD = 64 * 1024  # DESIGN: payloads are bounded; the decoders refuse anything larger

TTN = "v3/city-bins@ttn/devices/bin-0042/up"
CHIRPSTACK = "application/7/device/a84041000181c0de/event/up"
ZIGBEE2MQTT = "zigbee2mqtt/tuya level 1"
NATIVE = "city_ops/bin-n1/state"
STRANGER = "v3/other-app@ttn/devices/stranger/up"

# Every topic a bad message goes to, with the envelope its decoder expects.
TOPICS: dict[str, str] = {
    TTN: "ttn",
    STRANGER: "ttn",  # wildcard subscription: not our device
    CHIRPSTACK: "chirpstack",
    "application/7/device/A84041000181C0DE/event/up": "chirpstack",
    ZIGBEE2MQTT: "zigbee2mqtt",
    NATIVE: "native",
}
# Topics a decoder refuses before it looks at the payload (device ids are at most 64 characters).
UNKNOWN_TOPICS = (
    "v3/city-bins@ttn/devices/" + "b" * 65 + "/up",
    "application/7/device/" + "a8" * 33 + "/event/up",
)

GOOD: dict[str, tuple[str, dict[str, Any]]] = {
    "ttn": (
        TTN,
        {
            "uplink_message": {
                "decoded_payload": {
                    "distance": 700,
                    "battery": 92,
                    "temperature": 21.5,
                    "position": "normal",
                }
            }
        },
    ),
    "chirpstack": (
        CHIRPSTACK,
        {"object": {"Distance": "460 mm", "Bat": 3.4, "TempC_DS18B20": "19.25"}},
    ),
    "zigbee2mqtt": (ZIGBEE2MQTT, {"liquid_level_percent": 63, "battery": 80}),
    "native": (NATIVE, {"fill_percent": 12.3, "battery": 70, "temperature": 18, "tilt": False}),
}

# Plausible ranges of the documented fields; anything outside is unusable.
NUMERIC_RANGES: dict[str, tuple[float, float]] = {
    "distance": (0, 20_000),
    "Distance": (0, 20_000),
    "distance_mm": (0, 20_000),
    "fill_percent": (0, 100),
    "liquid_level_percent": (0, 100),
    "battery": (0, 100),
    "Bat": (0, 6),
    "temperature": (-50, 150),
    "TempC_DS18B20": (-50, 150),
}
TILT_FIELDS = ("position", "tilt")
JUNK_CHARS = string.ascii_letters + string.punctuation + " \t§äßÆ€😀\u200b\u202e\ufeff"

type Payload = bytes | str
type Raw = Any  # a JSON-able value, or _Raw for text json.dumps cannot produce


class _Raw:
    """JSON text spliced in verbatim (NaN is produced by json.dumps; deep nesting is not)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _dumps(value: Raw) -> str:
    """json.dumps that splices _Raw fragments in place."""
    fragments: list[str] = []

    def replace(item: Any) -> Any:
        if isinstance(item, _Raw):
            fragments.append(item.text)
            return f"\u0000raw{len(fragments) - 1}\u0000"
        if isinstance(item, dict):
            return {key: replace(value) for key, value in item.items()}
        if isinstance(item, list):
            return [replace(value) for value in item]
        return item

    text = json.dumps(replace(value), ensure_ascii=False)
    for index, fragment in enumerate(fragments):
        text = text.replace(json.dumps(f"\u0000raw{index}\u0000", ensure_ascii=False), fragment)
    return text


def _as_bytes(payload: Payload) -> bytes:
    return payload.encode("utf-8") if isinstance(payload, str) else payload


def json_verdict(payload: Payload) -> str | None:
    """What any decoder must say about the outer layer: too large, not JSON, not an object."""
    raw = _as_bytes(payload)
    if len(raw) > MAX_PAYLOAD:
        return "too_large"
    try:
        # The decoders parse strict RFC 8259 JSON: NaN, Infinity, lone surrogates, integers
        # beyond 64 bits and nesting deeper than 1024 are not JSON for them.
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "not_json"
    return None if isinstance(value, dict) else "not_object"


def expected(payload: Payload, constructed: str) -> str:
    """The reason a decoder gives: the outer layer's fault first, else what was built in."""
    return json_verdict(payload) or constructed


# -- generators of bad content ---------------------------------------------------------------


def junk_text(rng: random.Random, low: int = 1, high: int = 12) -> str:
    """Text without digits: no float can be read from it."""
    return "".join(rng.choice(JUNK_CHARS) for _ in range(rng.randint(low, high)))


def bad_number(rng: random.Random, field: str) -> Raw:
    low, high = NUMERIC_RANGES[field]
    choice = rng.randrange(12)
    if choice == 0:
        return rng.choice([True, False])
    if choice == 1:
        return round(high + rng.uniform(0.5, 1e6), rng.randint(0, 3))
    if choice == 2:
        return round(low - rng.uniform(0.5, 1e6), rng.randint(0, 3))
    if choice == 3:
        return _Raw(rng.choice(["NaN", "Infinity", "-Infinity", "1e400", "-1e999"]))
    if choice == 4:
        return junk_text(rng)
    if choice == 5:
        return rng.choice(["", " ", "12,5", "1.2.3", "0x10", "nan", "-inf", "1e999", "12 cm"])
    if choice == 6:
        return str(rng.randint(1, 9)) * rng.randint(33, 60)  # numeric but over 32 characters
    if choice == 7:
        return f"{high + rng.randint(1, 1000)}"  # out of range as a string
    if choice == 8:
        return [rng.randint(0, 10)]
    if choice == 9:
        return {"value": rng.randint(0, 10)}
    if choice == 10:
        return _Raw("1" + "0" * rng.randint(310, 400))  # valid JSON, too large for a float
    return _Raw("[" * 50 + "1" + "]" * 50)


def bad_flag(rng: random.Random) -> Raw:
    choice = rng.randrange(6)
    if choice == 0:
        return rng.choice([2, -1, 7, 100])
    if choice == 1:
        return rng.choice([0.5, 1.0, 0.0, -0.0])  # floats are not flags
    if choice == 2:
        return "§" + junk_text(rng)
    if choice == 3:
        return [True]
    if choice == 4:
        return {"tilt": True}
    return _Raw("NaN")


def bad_fields(rng: random.Random) -> dict[str, Raw]:
    """A decoded object whose known fields are all unusable (or null) among unknown ones."""
    fields: dict[str, Raw] = {}
    for field in rng.sample(sorted(NUMERIC_RANGES), rng.randint(0, 4)):
        fields[field] = None if rng.random() < 0.1 else bad_number(rng, field)
    for field in rng.sample(TILT_FIELDS, rng.randint(0, 2)):
        fields[field] = bad_flag(rng)
    for _ in range(rng.randint(0, 3)):
        fields[f"x_{junk_text(rng, 1, 8)}"] = rng.choice(
            [700, 50, "tilt", True, None, junk_text(rng), [1, 2], {"distance": 700}]
        )
    return fields


def non_object(rng: random.Random) -> Raw:
    """Any JSON value but an object."""
    return rng.choice(
        [
            None,
            True,
            False,
            rng.randint(-(10**6), 10**6),
            rng.uniform(-1e6, 1e6),
            junk_text(rng),
            "700",
            [],
            [rng.randint(0, 9) for _ in range(rng.randint(1, 5))],
            [{"distance": 700}],
            _Raw("NaN"),
        ]
    )


def envelope(kind: str, rng: random.Random) -> tuple[Raw, str]:
    """A JSON object in the decoder's envelope that still cannot give a reading."""
    choice = rng.randrange(10)
    if kind == "ttn":
        if choice == 0:
            return {}, "no_uplink"
        if choice == 1:
            return {"uplink_message": non_object(rng)}, "no_uplink"
        if choice == 2:
            return {"end_device_ids": {"device_id": "bin-0042"}, "join_accept": {}}, "no_uplink"
        if choice == 3:
            return {"uplink_message": {"frm_payload": "AXVk", "f_port": 85}}, "no_decoded_payload"
        if choice == 4:
            return {"uplink_message": {"decoded_payload": non_object(rng)}}, "no_decoded_payload"
        return {"uplink_message": {"decoded_payload": bad_fields(rng)}}, "no_measurement"
    if kind == "chirpstack":
        if choice == 0:
            return {}, "no_decoded_payload"
        if choice == 1:
            return {
                "deviceInfo": {"devEui": "a84041000181c0de"},
                "data": "DSQ=",
            }, "no_decoded_payload"
        if choice in (2, 3):
            return {"object": non_object(rng)}, "no_decoded_payload"
        return {"object": bad_fields(rng)}, "no_measurement"
    return bad_fields(rng), "no_measurement"


def wrap(kind: str, fields: Raw) -> Raw:
    if kind == "ttn":
        return {"uplink_message": {"decoded_payload": fields}}
    if kind == "chirpstack":
        return {"object": fields}
    return fields


def unicode_junk(rng: random.Random) -> Payload:
    """Code points from everywhere, lone surrogates included (sent as invalid UTF-8)."""
    ranges = [
        (0, 0x7F),
        (0x80, 0x7FF),
        (0x200B, 0x202E),
        (0xD800, 0xDFFF),
        (0xFEFF, 0xFEFF),
        (0x1F600, 0x1F64F),
    ]
    text = "".join(chr(rng.randint(*rng.choice(ranges))) for _ in range(rng.randint(1, 40)))
    if any(0xD800 <= ord(char) <= 0xDFFF for char in text):
        return text.encode("utf-8", "surrogatepass")
    return text


def _retry(make: Callable[[], Payload]) -> Payload:
    """Draw until the outer layer is unusable (random text is almost never a JSON object)."""
    while True:
        payload = make()
        if json_verdict(payload) is not None:
            return payload


def bad_message(rng: random.Random) -> tuple[str, Payload, str]:
    """One bad message: topic, payload and the reason a decoder must give."""
    topic = rng.choice(list(TOPICS))
    kind = TOPICS[topic]
    good = _dumps(GOOD[kind][1])
    category = rng.randrange(11)
    payload: Payload
    if category == 0:  # truncated JSON
        payload = good[: rng.randrange(len(good))]
    elif category == 1:  # garbled JSON: a few characters replaced

        def garble() -> Payload:
            chars = list(good)
            for _ in range(rng.randint(1, 4)):
                chars[rng.randrange(len(chars))] = rng.choice('{}[]:,"\\\x00\x01 x€')
            return "".join(chars)

        payload = _retry(garble)
    elif category == 2:  # random bytes
        payload = _retry(lambda: rng.randbytes(rng.randint(0, 200)))
    elif category == 3:  # a good message with invalid UTF-8 in it
        raw = good.encode()
        at = rng.randrange(len(raw) + 1)
        payload = raw[:at] + rng.choice([b"\xff", b"\xc3", b"\x80\x80", b"\xf8\x88"]) + raw[at:]
    elif category == 4:  # JSON of the wrong type
        payload = _dumps(non_object(rng))
    elif category == 5:  # unicode junk
        payload = _retry(lambda: unicode_junk(rng))
    elif category == 6:  # deeply nested arrays (parse fine, or fail: either is refused)
        depth = rng.randint(500, 30_000)
        payload = "[" * depth + "]" * depth if rng.random() < 0.8 else "[" * depth
    elif category == 7:  # deep nesting where a field should be
        depth = rng.randint(100, 5_000)
        nested = _Raw("[" * depth + "700" + "]" * depth)
        field = rng.choice(sorted(NUMERIC_RANGES))
        payload = _dumps(wrap(kind, {field: nested}))
        return topic, payload, expected(payload, "no_measurement")
    elif category == 8:  # NaN and friends, alone or where numbers belong
        if rng.random() < 0.5:
            payload = rng.choice(["NaN", "Infinity", "-Infinity", "[NaN]"])
        else:
            field = rng.choice(sorted(NUMERIC_RANGES))
            value = _Raw(rng.choice(["NaN", "Infinity", "-Infinity"]))
            payload = _dumps(wrap(kind, {field: value}))
            return topic, payload, expected(payload, "no_measurement")
    else:  # a well-formed object in the right envelope, but nothing usable in it
        body, reason = envelope(kind, rng)
        text = _dumps(body)
        return topic, (text if rng.random() < 0.5 else text.encode()), expected(text, reason)
    verdict = json_verdict(payload)
    assert verdict is not None, payload
    if isinstance(payload, str) and rng.random() < 0.5:
        payload = payload.encode("utf-8")
    return topic, payload, verdict


def huge_messages(rng: random.Random) -> list[tuple[str, Payload, str]]:
    """Payloads over 64 KiB: valid messages padded, random bytes and deep nesting."""
    messages: list[tuple[str, Payload, str]] = []
    for topic, body in GOOD.values():
        padded = {**body, "padding": "x" * (MAX_PAYLOAD + rng.randint(1, 1000))}
        messages.append((topic, json.dumps(padded), "too_large"))
        messages.append((topic, rng.randbytes(MAX_PAYLOAD + 1), "too_large"))
        messages.append((topic, b"[" * 40_000 + b"]" * 40_000, "too_large"))
    return messages


def build_bad_messages() -> list[tuple[str, Payload, str]]:
    rng = random.Random(SEED)
    messages = [bad_message(rng) for _ in range(BAD_MESSAGES)]
    messages += huge_messages(rng)
    messages += [
        (topic, payload, "unknown_topic")
        for topic in UNKNOWN_TOPICS
        for payload in (
            json.dumps(GOOD["ttn"][1]),
            json.dumps(GOOD["chirpstack"][1]),
            b"\xff",
            "[]",
        )
    ]
    rng.shuffle(messages)
    return messages


# -- the test --------------------------------------------------------------------------------


def snapshot(hass: HomeAssistant, entity_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """State and attributes of each entity (last_reported moves on every write; ignored)."""
    result = {}
    for entity_id in entity_ids:
        state = hass.states.get(entity_id)
        assert state is not None, entity_id
        result[entity_id] = (
            state.state,
            dict(state.attributes),
            state.last_changed,
            state.last_updated,
        )
    return result


def test_generator_is_deterministic_and_covers_every_reason() -> None:
    first, second = build_bad_messages(), build_bad_messages()
    assert first == second
    assert len(first) >= BAD_MESSAGES
    reasons = Counter(reason for _, _, reason in first)
    assert set(reasons) == {
        "not_json",
        "not_object",
        "too_large",
        "no_uplink",
        "no_decoded_payload",
        "no_measurement",
        "unknown_topic",
    }
    assert all(count >= 8 for count in reasons.values()), reasons
    kinds = Counter(TOPICS.get(topic, "unknown") for topic, _, _ in first)
    assert min(kinds[kind] for kind in ("ttn", "chirpstack", "zigbee2mqtt", "native")) > 1_000
    assert any(isinstance(p, bytes) for _, p, _ in first)
    assert any(isinstance(p, str) for _, p, _ in first)
    invalid_utf8 = 0
    for _, payload, _ in first:
        try:
            _as_bytes(payload).decode("utf-8")
        except UnicodeDecodeError:
            invalid_utf8 += 1
    assert invalid_utf8 > 500


async def test_ten_thousand_bad_messages(
    hass: HomeAssistant, setup_site: SetupSite, caplog: pytest.LogCaptureFixture
) -> None:
    entry = await setup_site()
    entity_ids = [
        e.entity_id for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    ]
    assert all(e.startswith(("sensor.", "binary_sensor.", "todo.")) for e in entity_ids)
    # The fill level of each (the rest waits for a value or its device's report), and the
    # site's three.
    assert len(entity_ids) == 4 * 1 + 3

    for topic, body in GOOD.values():
        async_fire_mqtt_message(hass, topic, json.dumps(body))
    await hass.async_block_till_done()
    fill_levels = {
        e.entity_id: hass.states.get(e.entity_id).state
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if e.translation_key == "fill_level"
    }
    assert sorted(fill_levels.values()) == ["12.3", "50.0", "63.0", "70.0"]
    before_diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert before_diagnostics["messages"]["applied"] == 4
    assert before_diagnostics["messages"]["rejected_total"] == 0
    before = snapshot(hass, entity_ids)

    messages = build_bad_messages()
    # The hub routes an uplink by the device in its topic before anything decodes it: a
    # device no site binds is counted as unknown, whatever its payload.
    strangers = sum(topic == STRANGER for topic, _, _ in messages)
    assert strangers > 500
    expected = Counter(reason for topic, _, reason in messages if topic != STRANGER)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        for topic, payload, _ in messages:
            async_fire_mqtt_message(hass, topic, payload)
        await hass.async_block_till_done()

    # Nothing escaped: no errors, no tracebacks, and Home Assistant is still running.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage()[:200] for r in errors[:5]]
    assert hass.state is CoreState.running

    # Nothing changed.
    assert snapshot(hass, entity_ids) == before

    # Everything counted, by reason.
    messages_diag = (await async_get_config_entry_diagnostics(hass, entry))["messages"]
    assert messages_diag["internal_errors"] == 0
    assert messages_diag["received"] == 4 + len(messages)
    assert messages_diag["applied"] == 4
    assert messages_diag["rejected"] == dict(expected)
    assert messages_diag["rejected_total"] == len(messages) - strangers
    assert messages_diag["rejected_fields"] == {}
    assert messages_diag["unknown_devices"] == strangers

    # Logged, but rate-limited: one line per topic and reason, the rest only counted.
    ours = [r for r in caplog.records if r.name.startswith(f"custom_components.{DOMAIN}")]
    assert all(r.levelno == logging.WARNING for r in ours if "stranger" not in r.getMessage())
    assert 0 < len(ours) < 50
    assert len(ours) + messages_diag["log_lines_suppressed"] == len(messages)
    others = [
        r
        for r in caplog.records
        if r not in ours
        # asyncio's debug mode notes that feeding 10,000 messages in one go took a while
        and not (r.name == "asyncio" and str(r.msg).startswith("Executing"))
        and r.levelno >= logging.WARNING
    ]
    assert others == [], [r.getMessage()[:200] for r in others[:5]]

    # And the site still listens.
    async_fire_mqtt_message(hass, NATIVE, json.dumps({"fill_percent": 42}))
    await hass.async_block_till_done()
    native_level = next(entity_id for entity_id, state in fill_levels.items() if state == "12.3")
    assert hass.states.get(native_level).state == "42.0"
