"""LoRaWAN uplinks from The Things Stack v3 and ChirpStack v4."""

from __future__ import annotations

from typing import Any

from .reading import DecodeError, Reading, device_reading, load_json_object

_MAX_DEVICE_ID = 64


def _segment_after(topic: str, marker: str, tail: str) -> str:
    """Return the topic level after `marker` when the topic ends in `tail`."""
    levels = topic.split("/")
    if len(levels) == 5 and levels[2] == marker and levels[4] == tail:  # the usual layout
        device = levels[3]
        if device and len(device) <= _MAX_DEVICE_ID:
            return device
    for index in range(len(levels) - 2):
        if levels[index] == marker and "/".join(levels[index + 2 :]) == tail:
            device = levels[index + 1]
            if device and len(device) <= _MAX_DEVICE_ID:
                return device
    raise DecodeError("unknown_topic", topic[:120])


def ttn_device(topic: str) -> str:
    """Return the TTN device id of an uplink topic `v3/<app>@<tenant>/devices/<id>/up`."""
    return _segment_after(topic, "devices", "up")


def decode_ttn(topic: str, payload: bytes | str) -> Reading:
    """Decode a The Things Stack v3 uplink; the payload formatter's output is in decoded_payload."""
    device = ttn_device(topic)
    message = load_json_object(payload)
    uplink = message.get("uplink_message")
    if not isinstance(uplink, dict):
        raise DecodeError("no_uplink", "uplink_message missing")
    decoded: Any = uplink.get("decoded_payload")
    if not isinstance(decoded, dict):
        raise DecodeError("no_decoded_payload", "no payload formatter output")
    return device_reading(device, decoded)


def chirpstack_device(topic: str) -> str:
    """Return the lower-case DevEUI of `application/<app>/device/<dev_eui>/event/up`."""
    return _segment_after(topic, "device", "event/up").lower()


def decode_chirpstack(topic: str, payload: bytes | str) -> Reading:
    """Decode a ChirpStack v4 uplink event; the codec's output is in `object`."""
    device = chirpstack_device(topic)
    message = load_json_object(payload)
    decoded: Any = message.get("object")
    if not isinstance(decoded, dict):
        raise DecodeError("no_decoded_payload", "no codec output in object")
    return device_reading(device, decoded)
