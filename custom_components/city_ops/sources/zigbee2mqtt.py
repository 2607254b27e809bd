"""Zigbee2MQTT device state messages (`<base>/<friendly_name>`)."""

from __future__ import annotations

from .reading import DecodeError, Reading, device_reading, load_json_object


def state_topic(base: str, friendly_name: str) -> str:
    """Return the topic Zigbee2MQTT publishes a device's state on."""
    return f"{base}/{friendly_name}"


def decode(base: str, topic: str, payload: bytes | str) -> Reading:
    """Decode a device state message; friendly names may themselves contain slashes."""
    prefix = f"{base}/"
    if not topic.startswith(prefix) or topic.endswith(("/set", "/get", "/availability")):
        raise DecodeError("unknown_topic", topic[:120])
    device = topic[len(prefix) :]
    if not device or device.startswith("bridge/"):
        raise DecodeError("unknown_topic", topic[:120])
    return device_reading(device, load_json_object(payload))


def command_topic(base: str, friendly_name: str) -> str:
    """Return the topic Zigbee2MQTT takes commands for a device on."""
    return f"{base}/{friendly_name}/set"
