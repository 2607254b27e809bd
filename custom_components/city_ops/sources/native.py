"""City Operations' own MQTT JSON schema (`<base>/<device>/state`), documented in the README."""

from __future__ import annotations

from .reading import DecodeError, Reading, device_reading, load_json_object


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
