"""City Operations' own MQTT JSON schema (`<base>/<device>/...`), documented in the README.

Containers publish `<base>/<device>/state`. Locker banks publish
`<base>/<bank>/compartment/<n>/state` (`door`, `locked`, `item_present`) and
`<base>/<bank>/keypad` (`{"code": "123456"}`, optionally with `"ts"`: when it was typed, Unix
seconds or ISO 8601 with a time zone; or the bare digits) and take
`{"lock": "LOCK"|"UNLOCK"}` on `<base>/<bank>/compartment/<n>/set`.
"""

from __future__ import annotations

from datetime import UTC, datetime
import math
from typing import Any, Final

from .reading import (
    MAX_CODE_DIGITS,
    MAX_COMPARTMENTS,
    MIN_CODE_DIGITS,
    CompartmentReading,
    DecodeError,
    KeypadEntry,
    Reading,
    device_reading,
    load_json_object,
)

# A keypad sends a dozen digits; anything longer is not a code.
MAX_KEYPAD_BYTES: Final = 256
_DOOR_WORDS: Final = {"open": True, "closed": False}


def state_topic(base: str, device: str) -> str:
    """Return the topic a native device publishes its state on."""
    return f"{base}/{device}/state"


def decode(base: str, topic: str, payload: bytes | str) -> Reading:
    """Decode `{"distance_mm"|"fill_percent", "battery", "temperature", "tilt"}`."""
    prefix = f"{base}/"
    if not topic.startswith(prefix) or not topic.endswith("/state"):
        raise DecodeError("unknown_topic", topic[:120])
    device = topic[len(prefix) : -len("/state")]
    if not device or "/" in device:
        raise DecodeError("unknown_topic", topic[:120])
    return device_reading(device, load_json_object(payload))


# -- locker banks ------------------------------------------------------------------------------


def compartment_state_topic(base: str, device: str) -> str:
    """Return the subscription (one `+` level) for every compartment state of a bank."""
    return f"{base}/{device}/compartment/+/state"


def keypad_topic(base: str, device: str) -> str:
    """Return the topic a bank publishes keypad entries on."""
    return f"{base}/{device}/keypad"


def compartment_command_topic(base: str, device: str, number: int) -> str:
    """Return the topic a bank takes lock commands for one compartment on."""
    return f"{base}/{device}/compartment/{number}/set"


def lock_payload(locked: bool) -> str:
    """Return the command that locks (True) or unlocks (False) a compartment."""
    return '{"lock":"LOCK"}' if locked else '{"lock":"UNLOCK"}'


def keypad_code(value: object) -> str:
    """Return a keypad code: text of 4-12 ASCII digits (leading zeros count).

    The runtime logs `str(err)`, so an error names the problem and a length, never the value.
    """
    if value is None:
        raise DecodeError("bad_code", "no code")
    if not isinstance(value, str):
        # A JSON number would lose leading zeros: "0042" and 42 are different codes.
        raise DecodeError("bad_code", f"{type(value).__name__}, not text")
    if not MIN_CODE_DIGITS <= len(value) <= MAX_CODE_DIGITS:
        raise DecodeError("bad_code", f"{len(value)} characters")
    if not (value.isascii() and value.isdigit()):
        raise DecodeError("bad_code", f"{len(value)} characters, not all digits")
    return str(value)  # a plain str, also for str subclasses (zigpy's CharacterString)


def decode_locker(base: str, topic: str, payload: bytes | str) -> CompartmentReading | KeypadEntry:
    """Decode a bank's compartment state or keypad message."""
    prefix = f"{base}/"
    if topic.startswith(prefix):
        match topic[len(prefix) :].split("/"):
            case [device, "keypad"] if device:
                code, sent_at = _keypad(payload)
                return KeypadEntry(device=device, code=code, sent_at=sent_at)
            case [device, "compartment", number, "state"] if device:
                compartment = _compartment_number(number)
                if compartment is not None:
                    return _compartment(device, compartment, load_json_object(payload))
    raise DecodeError("unknown_topic", topic[:120])


def _compartment_number(text: str) -> int | None:
    """Return 1..64 from a topic level written the way we write it ("7", not "07" or "+7")."""
    if not (text.isascii() and text.isdigit()) or len(text) > 2 or text.startswith("0"):
        return None
    number = int(text)
    return number if number <= MAX_COMPARTMENTS else None


def _compartment(device: str, compartment: int, fields: dict[str, Any]) -> CompartmentReading:
    values: dict[str, bool] = {}
    rejected: list[str] = []
    if fields.get("door") is not None:
        door = fields["door"]
        # Only the two words: `true` could mean open or closed, so booleans are refused.
        door_open = (
            _DOOR_WORDS.get(door.strip().lower())
            if isinstance(door, str) and len(door) <= 16
            else None
        )
        if door_open is None:
            rejected.append("door")
        else:
            values["door_open"] = door_open
    for name in ("locked", "item_present"):
        if fields.get(name) is None:
            continue
        if isinstance(fields[name], bool):
            values[name] = fields[name]
        else:
            rejected.append(name)
    reading = CompartmentReading(
        device=device, compartment=compartment, rejected=tuple(rejected), **values
    )
    if not reading.has_measurement():
        raise DecodeError(
            "no_measurement",
            f"rejected {', '.join(rejected)}" if rejected else "no known field",
        )
    return reading


def _keypad(payload: bytes | str) -> tuple[str, datetime | None]:
    """Return the code of a keypad message and when it was typed, if the message says.

    No error detail ever carries the payload.
    """
    raw = payload if isinstance(payload, bytes) else payload.encode(errors="replace")
    if len(raw) > MAX_KEYPAD_BYTES:
        raise DecodeError("too_large", f"{len(raw)} bytes")
    try:
        text = raw.decode().strip()
    except UnicodeDecodeError:
        raise DecodeError("bad_code", f"{len(raw)} bytes, not UTF-8") from None
    if not text.startswith("{"):
        return keypad_code(text), None
    try:
        fields = load_json_object(raw)
    except DecodeError as err:
        # The JSON parser's message may quote the document in a later version: keep only why.
        raise DecodeError(err.reason, f"{len(raw)} bytes") from None
    code = keypad_code(fields.get("code"))
    stamp = fields.get("ts")
    return code, None if stamp is None else _typed_at(stamp)


# Keypad clocks from 2001 to 2286 (10 digits of Unix seconds); anything else is no time.
_EARLIEST_TS = 1e9
_LATEST_TS = 1e10


def _typed_at(stamp: Any) -> datetime:
    """When an entry was typed: Unix seconds or ISO 8601 with a time zone."""
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        if math.isfinite(stamp) and _EARLIEST_TS <= stamp < _LATEST_TS:
            return datetime.fromtimestamp(stamp, UTC)
    elif isinstance(stamp, str) and len(stamp) <= 40:
        try:
            parsed = datetime.fromisoformat(stamp)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
    raise DecodeError("bad_timestamp", "ts must be Unix seconds or ISO 8601 with a time zone")
