"""Zigbee2MQTT device state messages (`<base>/<friendly_name>`) and device availability."""

from __future__ import annotations

from .reading import DecodeError, Reading, device_reading, load_json_object

AVAILABILITY = "/availability"
# What a luminaire answers to: asking for these makes Zigbee2MQTT read them and publish the state.
STATE_REQUEST = '{"state":"","brightness":""}'


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


def request_topic(base: str, friendly_name: str) -> str:
    """Return the topic that makes Zigbee2MQTT read a device and publish its state."""
    return f"{base}/{friendly_name}/get"


def availability_topics(base: str) -> str:
    """Return the wildcard for every device's availability (`online`/`offline`)."""
    return f"{base}/+{AVAILABILITY}"


def decode_availability(base: str, topic: str, payload: bytes | str) -> tuple[str, bool]:
    """Decode `<base>/<name>/availability`: JSON `{"state": ...}` or the older plain text."""
    prefix = f"{base}/"
    if not topic.startswith(prefix) or not topic.endswith(AVAILABILITY):
        raise DecodeError("unknown_topic", topic[:120])
    device = topic[len(prefix) : -len(AVAILABILITY)]
    if not device or device.startswith("bridge/") or device == "bridge":
        raise DecodeError("unknown_topic", topic[:120])
    if len(payload) > 1024:
        raise DecodeError("too_large", f"{len(payload)} bytes")
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    state: object = text.strip()
    if isinstance(state, str) and state.startswith("{"):
        state = load_json_object(payload).get("state")
    if state not in ("online", "offline"):
        raise DecodeError("invalid_availability", str(state)[:40])
    return device, state == "online"
