"""The typed reading every decoder produces, and the one error every decoder raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
import math
from typing import Any

import orjson

# A container sensor sends a few hundred bytes; anything near this is garbage or an attack.
MAX_PAYLOAD_BYTES = 64 * 1024
# A locker bank's compartments are numbered 1..64 (topics, ZHA endpoints, the asset file).
MAX_COMPARTMENTS = 64
MIN_CODE_DIGITS = 4
MAX_CODE_DIGITS = 12


class SourceKind(StrEnum):
    """How an asset's device is reached."""

    ZIGBEE2MQTT = "zigbee2mqtt"
    TTN = "ttn"
    CHIRPSTACK = "chirpstack"
    NATIVE = "native"
    ZHA = "zha"


class DecodeError(Exception):
    """A message that cannot be turned into a reading; `reason` is a short counter key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        """Keep the reason machine-readable and the detail for the log line."""
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Reading:
    """What one message said about one device; None means the message did not say."""

    device: str
    distance_mm: float | None = None
    fill_percent: float | None = None
    battery_percent: float | None = None
    battery_volt: float | None = None
    temperature_c: float | None = None
    tilted: bool | None = None
    on: bool | None = None
    brightness: float | None = None  # 0-254, Zigbee LevelControl scale
    occupancy: bool | None = None
    illuminance_lx: float | None = None
    power_w: float | None = None
    energy_kwh: float | None = None
    # Fields present in the message but unusable (wrong type, out of range): counted, not applied.
    rejected: tuple[str, ...] = field(default=())

    def has_measurement(self) -> bool:
        """Return True when the reading carries at least one usable value."""
        return any(
            value is not None
            for value in (
                self.distance_mm,
                self.fill_percent,
                self.battery_percent,
                self.battery_volt,
                self.temperature_c,
                self.tilted,
                self.on,
                self.brightness,
                self.occupancy,
                self.illuminance_lx,
                self.power_w,
                self.energy_kwh,
            )
        )


def load_json_object(payload: bytes | str) -> dict[str, Any]:
    """Parse a payload that must be a JSON object of bounded size."""
    size = len(payload) if isinstance(payload, bytes) else len(payload.encode(errors="replace"))
    if size > MAX_PAYLOAD_BYTES:
        raise DecodeError("too_large", f"{size} bytes")
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as err:
        raise DecodeError("not_json", str(err)[:80]) from None
    if not isinstance(value, dict):
        raise DecodeError("not_object", type(value).__name__)
    return value


def _number(value: Any, unit_suffix: str = "") -> float | None:
    """Return a finite float from a JSON number or numeric string (optionally with a unit)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # JSON integers have no size limit
            return None
    elif isinstance(value, str) and len(value) <= 32:
        text = value.strip()
        if unit_suffix and text.lower().endswith(unit_suffix):
            text = text[: -len(unit_suffix)].strip()
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _flag(value: Any, true_words: frozenset[str]) -> bool | None:
    """Return a boolean from true/false, 0/1 or a known word."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and len(value) <= 16:
        word = value.strip().lower()
        if word in true_words:
            return True
        if word in {"normal", "false", "no", "off", "0", "upright"}:
            return False
    return None


_TILT_WORDS = frozenset({"tilt", "tilted", "true", "yes", "on", "1"})

# field name -> (Reading attribute, unit suffix accepted in strings, low, high)
_NUMERIC_FIELDS: dict[str, tuple[str, str, float, float]] = {
    "distance": ("distance_mm", "mm", 0, 20_000),  # Milesight EM310-UDL, mm
    "Distance": ("distance_mm", "mm", 0, 20_000),  # Dragino LDDS75, mm
    "distance_mm": ("distance_mm", "mm", 0, 20_000),  # native schema
    "fill_percent": ("fill_percent", "%", 0, 100),  # native schema
    "liquid_level_percent": ("fill_percent", "%", 0, 100),  # Tuya via Zigbee2MQTT
    "battery": ("battery_percent", "%", 0, 100),
    "Bat": ("battery_volt", "v", 0, 6),  # Dragino, volts
    "temperature": ("temperature_c", "°c", -50, 150),
    "TempC_DS18B20": ("temperature_c", "°c", -50, 150),  # Dragino probe
    "brightness": ("brightness", "", 0, 254),  # Zigbee2MQTT lights
    "illuminance_lux": ("illuminance_lx", "lx", 0, 200_000),  # Zigbee2MQTT before 2.0
    "illuminance": ("illuminance_lx", "lx", 0, 200_000),  # Zigbee2MQTT 2.x: lux
    "power": ("power_w", "w", 0, 100_000),
    "energy": ("energy_kwh", "kwh", 0, 10_000_000),
}
_TILT_FIELDS = ("position", "tilt")
# field name -> (Reading attribute, words meaning True, words meaning False)
_FLAG_FIELDS: dict[str, tuple[str, frozenset[str], frozenset[str]]] = {
    "state": ("on", frozenset({"on"}), frozenset({"off"})),
    "occupancy": ("occupancy", frozenset({"true", "on", "1"}), frozenset({"false", "off", "0"})),
}

_NUMERIC, _FLAG, _TILT = 0, 1, 2
# Every field name read above -> (rank, kind, Reading attribute, the kind's parameters). The
# rank is the table's order: of two spellings of one quantity in a payload the lower rank wins,
# and unusable fields are listed in that order, so the result never depends on key order.
_FIELDS: dict[str, tuple[int, int, str, tuple[Any, ...]]] = {
    name: (rank, kind, attr, tuple(rest))
    for rank, (name, kind, attr, rest) in enumerate(
        [
            *((name, _NUMERIC, attr, rest) for name, (attr, *rest) in _NUMERIC_FIELDS.items()),
            *((name, _TILT, "tilted", ()) for name in _TILT_FIELDS),
            *((name, _FLAG, attr, rest) for name, (attr, *rest) in _FLAG_FIELDS.items()),
        ]
    )
}


def device_reading(device: str, fields: dict[str, Any]) -> Reading:
    """Map the known fields of a decoded object (any asset kind) onto a Reading.

    One pass over the names a payload carries (a sensor sends a handful of the 18 known ones).
    A plain JSON number in range, what sensors send, takes the short way.
    """
    known = _FIELDS
    values: dict[str, Any] = {}
    ranks: dict[str, int] = {}
    rejected: list[tuple[int, str]] = []
    for name, raw in fields.items():
        if (spec := known.get(name)) is None or raw is None:
            continue
        rank, kind, attr, params = spec
        value: float | bool | None
        if kind == _NUMERIC:
            suffix, low, high = params
            raw_type = type(raw)
            if (raw_type is int or raw_type is float) and low <= raw <= high:
                value = float(raw)
            else:
                value = _number(raw, suffix)
                if value is not None and not low <= value <= high:
                    value = None
        elif kind == _FLAG:
            true_words, false_words = params
            value = None
            if isinstance(raw, bool):
                value = raw
            elif isinstance(raw, str) and (word := raw.strip().lower()) in true_words | false_words:
                value = word in true_words
        else:
            value = _flag(raw, _TILT_WORDS)
        if value is None:
            rejected.append((rank, name))
        elif attr not in ranks or rank < ranks[attr]:
            values[attr] = value
            ranks[attr] = rank
    names: tuple[str, ...] = ()
    if rejected:
        rejected.sort()
        names = tuple(name for _, name in rejected)
    if not values:  # only usable values get in, so none means no measurement
        raise DecodeError(
            "no_measurement",
            f"rejected {', '.join(names)}" if names else "no known field",
        )
    if names:
        return Reading(device=device, rejected=names, **values)
    return Reading(device=device, **values)


@dataclass(frozen=True, slots=True)
class CompartmentReading:
    """What a locker bank said about one compartment; None means the message did not say."""

    device: str  # the bank's device (native id or ZHA IEEE)
    compartment: int
    door_open: bool | None = None
    locked: bool | None = None
    item_present: bool | None = None
    rejected: tuple[str, ...] = field(default=())

    def has_measurement(self) -> bool:
        """Return True when the reading carries at least one usable value."""
        return (
            self.door_open is not None or self.locked is not None or self.item_present is not None
        )


@dataclass(frozen=True, slots=True)
class KeypadEntry:
    """A code typed at a bank's keypad; the code never appears in a repr or a log line."""

    device: str
    code: str = field(repr=False)
    sent_at: datetime | None = None  # when typed, if the controller says (native `ts`)


type LockerReading = CompartmentReading | KeypadEntry


def valid_code_text(code: str) -> bool:
    """A locker code as keypads and the service take it: 4-12 ASCII digits."""
    return MIN_CODE_DIGITS <= len(code) <= MAX_CODE_DIGITS and code.isascii() and code.isdigit()
