"""Decoders: topics, field mapping and malformed input, one table per concern."""

from __future__ import annotations

from collections.abc import Callable
import json
from typing import Any

import pytest

from custom_components.city_ops.sources import MAX_PAYLOAD_BYTES, lorawan, native, zigbee2mqtt
from custom_components.city_ops.sources.reading import (
    DecodeError,
    Reading,
    device_reading,
    load_json_object,
)

TTN_TOPIC = "v3/city-bins@ttn/devices/bin-0042/up"
CHIRPSTACK_TOPIC = "application/7/device/a84041000181c0de/event/up"
Z2M_BASE = "zigbee2mqtt"
Z2M_TOPIC = "zigbee2mqtt/tuya level 1"
NATIVE_BASE = "city_ops"
NATIVE_TOPIC = "city_ops/bin-n1/state"

type Payload = bytes | str


def _ttn(fields: Any) -> dict[str, Any]:
    return {
        "end_device_ids": {"device_id": "bin-0042"},
        "uplink_message": {"decoded_payload": fields},
    }


def _chirpstack(fields: Any) -> dict[str, Any]:
    return {"deviceInfo": {"devEui": "a84041000181c0de"}, "object": fields}


def _plain(fields: Any) -> Any:
    return fields


# decoder id -> (decode one payload on the decoder's own topic, wrap the sensor's fields)
DECODERS: dict[str, tuple[Callable[[Payload], Reading], Callable[[Any], Any]]] = {
    "ttn": (lambda payload: lorawan.decode_ttn(TTN_TOPIC, payload), _ttn),
    "chirpstack": (
        lambda payload: lorawan.decode_chirpstack(CHIRPSTACK_TOPIC, payload),
        _chirpstack,
    ),
    "zigbee2mqtt": (lambda payload: zigbee2mqtt.decode(Z2M_BASE, Z2M_TOPIC, payload), _plain),
    "native": (lambda payload: native.decode(NATIVE_BASE, NATIVE_TOPIC, payload), _plain),
}
DEVICE_OF = {
    "ttn": "bin-0042",
    "chirpstack": "a84041000181c0de",
    "zigbee2mqtt": "tuya level 1",
    "native": "bin-n1",
}


def _reason(call: Callable[[], object]) -> str:
    with pytest.raises(DecodeError) as info:
        call()
    return info.value.reason


# -- topics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "device"),
    [
        pytest.param("v3/city-bins@ttn/devices/bin-0042/up", "bin-0042", id="ttn-cloud"),
        pytest.param("v3/city-bins/devices/bin-0042/up", "bin-0042", id="no-tenant"),
        pytest.param(
            "v3/devices@x/devices/eui-70b3d57ed0051234/up",
            "eui-70b3d57ed0051234",
            id="app-named-devices",
        ),
        pytest.param("v3/app@t/devices/" + "d" * 64 + "/up", "d" * 64, id="id-64-chars"),
    ],
)
def test_ttn_topic(topic: str, device: str) -> None:
    reading = lorawan.decode_ttn(topic, json.dumps(_ttn({"distance": 700})))
    assert reading.device == device


@pytest.mark.parametrize(
    "topic",
    [
        pytest.param("v3/app@t/devices/bin-0042/down/push", id="downlink"),
        pytest.param("v3/app@t/devices/bin-0042/join", id="join"),
        pytest.param("v3/app@t/devices/bin-0042/up/extra", id="trailing-level"),
        pytest.param("v3/app@t/devices//up", id="empty-device"),
        pytest.param("v3/app@t/devices/" + "d" * 65 + "/up", id="id-too-long"),
        pytest.param("v3/app@t/device/bin-0042/up", id="singular-devices"),
        pytest.param("v3/up", id="too-short"),
        pytest.param("", id="empty"),
    ],
)
def test_ttn_topic_refused(topic: str) -> None:
    payload = json.dumps(_ttn({"distance": 700}))
    assert _reason(lambda: lorawan.decode_ttn(topic, payload)) == "unknown_topic"


@pytest.mark.parametrize(
    ("topic", "device"),
    [
        pytest.param(
            "application/7/device/a84041000181c0de/event/up", "a84041000181c0de", id="lower"
        ),
        pytest.param(
            "application/7/device/A84041000181C0DE/event/up", "a84041000181c0de", id="upper"
        ),
        pytest.param(
            "application/5e1c-uuid/device/A84041000181c0De/event/up", "a84041000181c0de", id="mixed"
        ),
    ],
)
def test_chirpstack_topic_lowercases_dev_eui(topic: str, device: str) -> None:
    reading = lorawan.decode_chirpstack(topic, json.dumps(_chirpstack({"Distance": 700})))
    assert reading.device == device


@pytest.mark.parametrize(
    "topic",
    [
        pytest.param("application/7/device/a84041000181c0de/event/join", id="join-event"),
        pytest.param("application/7/device/a84041000181c0de/event/status", id="status-event"),
        pytest.param("application/7/device/a84041000181c0de/command/down", id="downlink"),
        pytest.param("application/7/device//event/up", id="empty-eui"),
        pytest.param("application/7/devices/a84041000181c0de/event/up", id="plural-device"),
        pytest.param("application/7/device/a84041000181c0de/up", id="missing-event-level"),
        pytest.param("v3/app@t/devices/bin-0042/up", id="ttn-topic"),
    ],
)
def test_chirpstack_topic_refused(topic: str) -> None:
    payload = json.dumps(_chirpstack({"Distance": 700}))
    assert _reason(lambda: lorawan.decode_chirpstack(topic, payload)) == "unknown_topic"


@pytest.mark.parametrize(
    ("base", "topic", "device"),
    [
        pytest.param("zigbee2mqtt", "zigbee2mqtt/tuya level 1", "tuya level 1", id="default-base"),
        pytest.param(
            "zigbee2mqtt", "zigbee2mqtt/park/north/level 1", "park/north/level 1", id="slashes"
        ),
        pytest.param("z2m/site a", "z2m/site a/bin 3", "bin 3", id="custom-base"),
        pytest.param(
            "zigbee2mqtt", "zigbee2mqtt/0x00158d0001a2b3c4", "0x00158d0001a2b3c4", id="ieee"
        ),
        pytest.param(
            "zigbee2mqtt", "zigbee2mqtt/settings/level", "settings/level", id="set-inside-name"
        ),
    ],
)
def test_zigbee2mqtt_topic(base: str, topic: str, device: str) -> None:
    reading = zigbee2mqtt.decode(base, topic, '{"liquid_level_percent": 40}')
    assert reading.device == device
    assert zigbee2mqtt.state_topic(base, device) == topic


@pytest.mark.parametrize(
    ("base", "topic"),
    [
        pytest.param("zigbee2mqtt", "zigbee2mqtt/tuya level 1/set", id="set"),
        pytest.param("zigbee2mqtt", "zigbee2mqtt/tuya level 1/get", id="get"),
        pytest.param("zigbee2mqtt", "zigbee2mqtt/tuya level 1/availability", id="availability"),
        pytest.param("zigbee2mqtt", "zigbee2mqtt/park/tuya/set", id="set-after-slashes"),
        pytest.param("zigbee2mqtt", "zigbee2mqtt/bridge/state", id="bridge-state"),
        pytest.param("zigbee2mqtt", "zigbee2mqtt/bridge/devices", id="bridge-devices"),
        pytest.param(
            "zigbee2mqtt", "zigbee2mqtt/bridge/response/device/rename", id="bridge-response"
        ),
        pytest.param("zigbee2mqtt", "zigbee2mqtt/", id="no-name"),
        pytest.param("zigbee2mqtt", "zigbee2mqtt", id="base-only"),
        pytest.param("zigbee2mqtt", "zigbee2mqttx/tuya", id="base-prefix-only"),
        pytest.param("zigbee2mqtt", "other/tuya level 1", id="other-base"),
        pytest.param("z2m/site a", "zigbee2mqtt/tuya level 1", id="default-base-not-configured"),
    ],
)
def test_zigbee2mqtt_topic_refused(base: str, topic: str) -> None:
    payload = '{"liquid_level_percent": 40}'
    assert _reason(lambda: zigbee2mqtt.decode(base, topic, payload)) == "unknown_topic"


@pytest.mark.parametrize(
    ("base", "topic", "device"),
    [
        pytest.param("city_ops", "city_ops/bin-n1/state", "bin-n1", id="default"),
        pytest.param(
            "stadt/norderstedt", "stadt/norderstedt/locker-1/state", "locker-1", id="deep-base"
        ),
    ],
)
def test_native_topic(base: str, topic: str, device: str) -> None:
    reading = native.decode(base, topic, '{"fill_percent": 12}')
    assert reading.device == device
    assert native.state_topic(base, device) == topic


@pytest.mark.parametrize(
    ("base", "topic"),
    [
        pytest.param("city_ops", "city_ops/bin-n1/set", id="set"),
        pytest.param("city_ops", "city_ops/bin-n1", id="no-state-level"),
        pytest.param("city_ops", "city_ops/a/b/state", id="slash-in-device"),
        pytest.param("city_ops", "city_ops//state", id="empty-device"),
        pytest.param("city_ops", "city_ops/state", id="base-state"),
        pytest.param("city_ops", "other/bin-n1/state", id="other-base"),
        pytest.param("city_ops", "city_opsx/bin-n1/state", id="base-prefix-only"),
    ],
)
def test_native_topic_refused(base: str, topic: str) -> None:
    payload = '{"fill_percent": 12}'
    assert _reason(lambda: native.decode(base, topic, payload)) == "unknown_topic"


# -- envelopes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        pytest.param({}, "no_uplink", id="empty-object"),
        pytest.param({"join_accept": {}}, "no_uplink", id="join-accept"),
        pytest.param({"uplink_message": None}, "no_uplink", id="uplink-null"),
        pytest.param({"uplink_message": "up"}, "no_uplink", id="uplink-string"),
        pytest.param({"uplink_message": [1]}, "no_uplink", id="uplink-list"),
        pytest.param(
            {"uplink_message": {"frm_payload": "AQI="}}, "no_decoded_payload", id="no-formatter"
        ),
        pytest.param(
            {"uplink_message": {"decoded_payload": None}}, "no_decoded_payload", id="null"
        ),
        pytest.param(
            {"uplink_message": {"decoded_payload": [700]}}, "no_decoded_payload", id="list"
        ),
        pytest.param(
            {"uplink_message": {"decoded_payload": "700"}}, "no_decoded_payload", id="str"
        ),
        pytest.param(
            {"uplink_message": {"decoded_payload": 700}}, "no_decoded_payload", id="number"
        ),
        pytest.param({"decoded_payload": {"distance": 700}}, "no_uplink", id="payload-at-top"),
    ],
)
def test_ttn_envelope(message: Any, reason: str) -> None:
    assert _reason(lambda: lorawan.decode_ttn(TTN_TOPIC, json.dumps(message))) == reason


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        pytest.param({}, "no_decoded_payload", id="empty-object"),
        pytest.param({"data": "AQI="}, "no_decoded_payload", id="no-codec"),
        pytest.param({"object": None}, "no_decoded_payload", id="null"),
        pytest.param({"object": [700]}, "no_decoded_payload", id="list"),
        pytest.param({"object": "700"}, "no_decoded_payload", id="str"),
        pytest.param(
            {"uplink_message": {"decoded_payload": {"distance": 700}}},
            "no_decoded_payload",
            id="ttn-shape",
        ),
        pytest.param({"object": {}}, "no_measurement", id="empty-codec-output"),
    ],
)
def test_chirpstack_envelope(message: Any, reason: str) -> None:
    assert (
        _reason(lambda: lorawan.decode_chirpstack(CHIRPSTACK_TOPIC, json.dumps(message))) == reason
    )


def test_ttn_full_uplink() -> None:
    """A real-shaped The Things Stack uplink: only decoded_payload matters."""
    message = {
        "end_device_ids": {"device_id": "bin-0042", "dev_eui": "70B3D57ED0051234"},
        "received_at": "2026-03-01T10:00:00.123456789Z",
        "uplink_message": {
            "f_port": 85,
            "frm_payload": "AXVkA4IcAg==",
            "decoded_payload": {"battery": 100, "distance": 540, "position": "normal"},
            "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1"}, "rssi": -97}],
        },
    }
    reading = lorawan.decode_ttn(TTN_TOPIC, json.dumps(message).encode())
    assert reading == Reading(
        device="bin-0042", distance_mm=540.0, battery_percent=100.0, tilted=False
    )


def test_chirpstack_full_event() -> None:
    """A real-shaped ChirpStack v4 event with the Dragino codec's output."""
    message = {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "deviceInfo": {"devEui": "a84041000181c0de", "deviceName": "glass-7"},
        "fPort": 2,
        "data": "DSQHbwEAAAE=",
        "object": {
            "Bat": 3.365,
            "Distance": "1234 mm",
            "TempC_DS18B20": "21.50",
            "Interrupt_flag": 0,
        },
    }
    reading = lorawan.decode_chirpstack(CHIRPSTACK_TOPIC, json.dumps(message))
    assert reading == Reading(
        device="a84041000181c0de", distance_mm=1234.0, battery_volt=3.365, temperature_c=21.5
    )


# -- field mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # Milesight EM310-UDL
        pytest.param({"distance": 700}, {"distance_mm": 700.0}, id="em310-distance"),
        pytest.param({"distance": 0}, {"distance_mm": 0.0}, id="em310-distance-zero"),
        pytest.param({"distance": 20000}, {"distance_mm": 20000.0}, id="em310-distance-max"),
        pytest.param({"distance": 712.5}, {"distance_mm": 712.5}, id="em310-distance-float"),
        pytest.param({"battery": 92}, {"battery_percent": 92.0}, id="em310-battery"),
        pytest.param({"position": "normal"}, {"tilted": False}, id="em310-position-normal"),
        pytest.param({"position": "tilt"}, {"tilted": True}, id="em310-position-tilt"),
        pytest.param({"position": " Tilt "}, {"tilted": True}, id="em310-position-case"),
        pytest.param({"tilt": True}, {"tilted": True}, id="em310-old-tilt-true"),
        pytest.param({"tilt": 0}, {"tilted": False}, id="em310-old-tilt-0"),
        pytest.param({"tilt": 1}, {"tilted": True}, id="em310-old-tilt-1"),
        pytest.param({"tilt": "yes"}, {"tilted": True}, id="em310-old-tilt-yes"),
        pytest.param(
            {"battery": 84, "distance": 1100, "position": "tilt"},
            {"battery_percent": 84.0, "distance_mm": 1100.0, "tilted": True},
            id="em310-all",
        ),
        # Dragino LDDS75
        pytest.param({"Distance": 1234}, {"distance_mm": 1234.0}, id="ldds75-distance-number"),
        pytest.param({"Distance": "1234 mm"}, {"distance_mm": 1234.0}, id="ldds75-distance-mm"),
        pytest.param(
            {"Distance": "1234mm"}, {"distance_mm": 1234.0}, id="ldds75-distance-mm-tight"
        ),
        pytest.param({"Distance": "1234"}, {"distance_mm": 1234.0}, id="ldds75-distance-string"),
        pytest.param({"Bat": 3.365}, {"battery_volt": 3.365}, id="ldds75-bat"),
        pytest.param({"Bat": "3.6 V"}, {"battery_volt": 3.6}, id="ldds75-bat-unit"),
        pytest.param({"TempC_DS18B20": "21.50"}, {"temperature_c": 21.5}, id="ldds75-temp-string"),
        pytest.param({"TempC_DS18B20": -3.25}, {"temperature_c": -3.25}, id="ldds75-temp-number"),
        pytest.param({"TempC_DS18B20": "21.5 °C"}, {"temperature_c": 21.5}, id="ldds75-temp-unit"),
        # Tuya ultrasonic level sensor through Zigbee2MQTT
        pytest.param({"liquid_level_percent": 37}, {"fill_percent": 37.0}, id="tuya-level"),
        pytest.param(
            {"liquid_level_percent": 0, "liquid_depth": 0.4, "linkquality": 120},
            {"fill_percent": 0.0},
            id="tuya-level-zero-extras",
        ),
        # native schema
        pytest.param({"distance_mm": 450}, {"distance_mm": 450.0}, id="native-distance"),
        pytest.param({"fill_percent": 100}, {"fill_percent": 100.0}, id="native-fill"),
        pytest.param({"temperature": 18.25}, {"temperature_c": 18.25}, id="native-temperature"),
        pytest.param({"temperature": -50}, {"temperature_c": -50.0}, id="native-temperature-low"),
        pytest.param({"tilt": False}, {"tilted": False}, id="native-tilt"),
        pytest.param(
            {"fill_percent": 55.5, "battery": 70, "temperature": 19, "tilt": False},
            {"fill_percent": 55.5, "battery_percent": 70.0, "temperature_c": 19.0, "tilted": False},
            id="native-all",
        ),
        # two spellings: the first field of a kind in the table wins, independent of key order
        pytest.param(
            {"Distance": 900, "distance": 800}, {"distance_mm": 800.0}, id="two-spellings"
        ),
        pytest.param(
            {"tilt": True, "position": "normal"}, {"tilted": False}, id="position-over-tilt"
        ),
        # null means "not measured", not "broken"
        pytest.param(
            {"distance": None, "battery": 50}, {"battery_percent": 50.0}, id="null-skipped"
        ),
    ],
)
def test_container_fields(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    assert device_reading("bin", fields) == Reading(device="bin", **expected)


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_every_decoder_maps_fields(decoder: str) -> None:
    decode, wrap = DECODERS[decoder]
    fields = {"distance": 700, "battery": 92, "TempC_DS18B20": "21.50", "position": "tilt"}
    for payload in (json.dumps(wrap(fields)), json.dumps(wrap(fields)).encode()):
        assert decode(payload) == Reading(
            device=DEVICE_OF[decoder],
            distance_mm=700.0,
            battery_percent=92.0,
            temperature_c=21.5,
            tilted=True,
        )


# -- unusable fields: listed in `rejected`, the rest kept ------------------------------------

BIG_INT = 10**400  # valid JSON, too large for a float


@pytest.mark.parametrize(
    ("fields", "expected", "rejected"),
    [
        pytest.param(
            {"distance": -1, "battery": 50},
            {"battery_percent": 50.0},
            ("distance",),
            id="distance-negative",
        ),
        pytest.param(
            {"distance": 20001, "battery": 50},
            {"battery_percent": 50.0},
            ("distance",),
            id="distance-too-far",
        ),
        pytest.param(
            {"distance": True, "battery": 50},
            {"battery_percent": 50.0},
            ("distance",),
            id="distance-bool",
        ),
        pytest.param(
            {"distance": [700], "battery": 50},
            {"battery_percent": 50.0},
            ("distance",),
            id="distance-list",
        ),
        pytest.param(
            {"distance": {"v": 7}, "battery": 50},
            {"battery_percent": 50.0},
            ("distance",),
            id="distance-object",
        ),
        pytest.param(
            {"distance": "far", "battery": 50},
            {"battery_percent": 50.0},
            ("distance",),
            id="distance-word",
        ),
        pytest.param(
            {"distance": "12 cm", "battery": 50},
            {"battery_percent": 50.0},
            ("distance",),
            id="distance-wrong-unit",
        ),
        pytest.param(
            {"distance": "1" * 33, "battery": 50},
            {"battery_percent": 50.0},
            ("distance",),
            id="distance-long-string",
        ),
        pytest.param(
            {"distance": "", "battery": 50},
            {"battery_percent": 50.0},
            ("distance",),
            id="distance-empty-string",
        ),
        pytest.param(
            {"distance": "nan", "battery": 50},
            {"battery_percent": 50.0},
            ("distance",),
            id="distance-nan-string",
        ),
        pytest.param(
            {"distance": "1e400", "battery": 50},
            {"battery_percent": 50.0},
            ("distance",),
            id="distance-inf-string",
        ),
        pytest.param(
            {"distance": float("nan"), "battery": 50},
            {"battery_percent": 50.0},
            ("distance",),
            id="distance-nan",
        ),
        pytest.param(
            {"distance": float("inf"), "battery": 50},
            {"battery_percent": 50.0},
            ("distance",),
            id="distance-inf",
        ),
        pytest.param(
            {"distance": BIG_INT, "battery": 50},
            {"battery_percent": 50.0},
            ("distance",),
            id="distance-huge-int",
        ),
        pytest.param(
            {"Distance": -5, "Bat": 3.4},
            {"battery_volt": 3.4},
            ("Distance",),
            id="ldds75-distance-negative",
        ),
        pytest.param(
            {"Distance": 700, "Bat": 6.5}, {"distance_mm": 700.0}, ("Bat",), id="bat-too-high"
        ),
        pytest.param(
            {"Distance": 700, "Bat": -0.1}, {"distance_mm": 700.0}, ("Bat",), id="bat-negative"
        ),
        pytest.param(
            {"Distance": 700, "Bat": "3.6 mV"}, {"distance_mm": 700.0}, ("Bat",), id="bat-unit"
        ),
        pytest.param(
            {"distance": 700, "battery": 101},
            {"distance_mm": 700.0},
            ("battery",),
            id="battery-over-100",
        ),
        pytest.param(
            {"distance": 700, "battery": -1},
            {"distance_mm": 700.0},
            ("battery",),
            id="battery-negative",
        ),
        pytest.param(
            {"distance": 700, "battery": False},
            {"distance_mm": 700.0},
            ("battery",),
            id="battery-bool",
        ),
        pytest.param(
            {"distance": 700, "temperature": 151},
            {"distance_mm": 700.0},
            ("temperature",),
            id="temperature-high",
        ),
        pytest.param(
            {"distance": 700, "temperature": -51},
            {"distance_mm": 700.0},
            ("temperature",),
            id="temperature-low",
        ),
        pytest.param(
            {"distance": 700, "TempC_DS18B20": "327.67"},
            {"distance_mm": 700.0},
            ("TempC_DS18B20",),
            id="ds18b20-no-probe",
        ),
        pytest.param(
            {"fill_percent": 100.5, "battery": 9},
            {"battery_percent": 9.0},
            ("fill_percent",),
            id="fill-over-100",
        ),
        pytest.param(
            {"liquid_level_percent": -3, "battery": 9},
            {"battery_percent": 9.0},
            ("liquid_level_percent",),
            id="tuya-negative",
        ),
        pytest.param(
            {"distance": 700, "position": "sideways"},
            {"distance_mm": 700.0},
            ("position",),
            id="position-word",
        ),
        pytest.param({"distance": 700, "tilt": 2}, {"distance_mm": 700.0}, ("tilt",), id="tilt-2"),
        pytest.param(
            {"distance": 700, "tilt": 1.0}, {"distance_mm": 700.0}, ("tilt",), id="tilt-float"
        ),
        pytest.param(
            {"distance": 700, "tilt": [True]}, {"distance_mm": 700.0}, ("tilt",), id="tilt-list"
        ),
        pytest.param(
            {"distance": -1, "Distance": 650},
            {"distance_mm": 650.0},
            ("distance",),
            id="bad-spelling-falls-through",
        ),
        pytest.param(
            {"distance": "x", "battery": 200, "temperature": True, "tilt": "?", "Bat": 3.3},
            {"battery_volt": 3.3},
            ("distance", "battery", "temperature", "tilt"),
            id="many-rejected",
        ),
    ],
)
def test_unusable_fields_rejected_rest_kept(
    fields: dict[str, Any], expected: dict[str, Any], rejected: tuple[str, ...]
) -> None:
    reading = device_reading("bin", fields)
    assert reading == Reading(device="bin", rejected=rejected, **expected)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="empty"),
        pytest.param({"linkquality": 87, "voltage": 3000}, id="unknown-only"),
        pytest.param({"Distance": None, "battery": None}, id="nulls"),
        pytest.param({"distance": -1}, id="out-of-range-only"),
        pytest.param({"distance": True, "battery": "full", "tilt": 5}, id="wrong-types-only"),
        pytest.param({"temperature": float("nan")}, id="nan-only"),
        pytest.param({"distance": BIG_INT}, id="huge-int-only"),
        pytest.param({"DISTANCE": 700, "Battery": 50}, id="wrong-case"),
    ],
)
def test_no_usable_field(fields: dict[str, Any]) -> None:
    assert _reason(lambda: device_reading("bin", fields)) == "no_measurement"


# -- malformed payloads, through every decoder -----------------------------------------------

_GOOD = {"distance": 700}
_MALFORMED: list[Any] = [
    pytest.param(b"", "not_json", id="empty"),
    pytest.param(b"   ", "not_json", id="blank"),
    pytest.param(b"distance=700", "not_json", id="not-json"),
    pytest.param(b'{"distance": 700', "not_json", id="truncated"),
    pytest.param(b"{'distance': 700}", "not_json", id="single-quotes"),
    pytest.param(b'{"distance": 700,}', "not_json", id="trailing-comma"),
    pytest.param(b'{"distance": 700}{"distance": 700}', "not_json", id="two-objects"),
    pytest.param(b'{"distance": 7\xff00}', "not_json", id="invalid-utf8"),
    pytest.param(b"\xff\xfe\xfd\x00\x01", "not_json", id="random-bytes"),
    pytest.param(b"\xef\xbb\xbf" + b"\x80" * 3, "not_json", id="bom-then-junk"),
    pytest.param("\ufeff{}", "not_json", id="str-with-bom"),
    pytest.param(b"[]", "not_object", id="empty-array"),
    pytest.param(b'[{"distance": 700}]', "not_object", id="array-of-object"),
    pytest.param(b"700", "not_object", id="number"),
    pytest.param(b"-0.5e3", "not_object", id="float"),
    pytest.param(b'"{\\"distance\\": 700}"', "not_object", id="json-string"),
    pytest.param(b"null", "not_object", id="null"),
    pytest.param(b"true", "not_object", id="true"),
    pytest.param(b"NaN", "not_json", id="nan"),
    pytest.param(b"-Infinity", "not_json", id="minus-infinity"),
    pytest.param(b"[" * 20_000 + b"]" * 20_000, "not_json", id="deeply-nested-array"),
    pytest.param(b"[" * 20_000, "not_json", id="deeply-nested-unclosed"),
    pytest.param(b" " * (MAX_PAYLOAD_BYTES + 1), "too_large", id="too-large-blank"),
    pytest.param(
        json.dumps({"distance": 700, "pad": "x" * MAX_PAYLOAD_BYTES}).encode(),
        "too_large",
        id="too-large-valid-json",
    ),
    pytest.param("[" * (MAX_PAYLOAD_BYTES + 1), "too_large", id="too-large-str"),
]


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize(("payload", "reason"), _MALFORMED)
def test_malformed_payload(decoder: str, payload: Payload, reason: str) -> None:
    decode, _ = DECODERS[decoder]
    assert _reason(lambda: decode(payload)) == reason


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize(
    ("raw_fields", "reason"),
    [
        pytest.param('{"distance": NaN}', "not_json", id="nan"),
        pytest.param('{"distance": Infinity, "battery": -Infinity}', "not_json", id="infinity"),
        pytest.param('{"distance": 1e400}', "not_json", id="float-overflow"),
        pytest.param('{"distance": 1' + "0" * 400 + "}", "not_json", id="huge-int"),
        pytest.param('{"distance": true, "battery": false}', "no_measurement", id="bools"),
        pytest.param('{"distance": "700 cm"}', "no_measurement", id="wrong-unit"),
        pytest.param('{"distance": -700}', "no_measurement", id="negative"),
        pytest.param('{"a": ' * 5_000 + "1" + "}" * 5_000, "not_json", id="deeply-nested-object"),
        pytest.param(
            '{"distance": ' + "[" * 5_000 + "]" * 5_000 + "}",
            "not_json",
            id="nested-in-field",
        ),
        pytest.param('{"\\ud800": 1, "ẞ\\u0000": "\\u202e"}', "not_json", id="unicode-junk-keys"),
    ],
)
def test_non_standard_json_in_every_decoder(decoder: str, raw_fields: str, reason: str) -> None:
    decode, wrap = DECODERS[decoder]
    # Splice the raw (possibly non-standard) JSON into the decoder's envelope.
    envelope = json.dumps(wrap("__FIELDS__")).replace('"__FIELDS__"', raw_fields)
    assert _reason(lambda: decode(envelope)) == reason


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_size_limit_is_inclusive(decoder: str) -> None:
    decode, wrap = DECODERS[decoder]
    body = json.dumps(wrap(_GOOD))
    padded = body[:-1] + " " * (MAX_PAYLOAD_BYTES - len(body)) + "}"
    assert len(padded) == MAX_PAYLOAD_BYTES
    assert decode(padded.encode()).distance_mm == 700.0
    assert _reason(lambda: decode((padded + " ").encode())) == "too_large"


def test_decode_error_carries_reason_and_detail() -> None:
    with pytest.raises(DecodeError) as info:
        load_json_object(b"[1]")
    assert info.value.reason == "not_object"
    assert info.value.detail == "list"
    assert str(info.value) == "not_object: list"
    assert str(DecodeError("no_uplink")) == "no_uplink"


def test_unknown_topic_detail_is_bounded() -> None:
    topic = "v3/app/devices/" + "x" * 5_000 + "/up"
    with pytest.raises(DecodeError) as info:
        lorawan.decode_ttn(topic, b"{}")
    assert info.value.reason == "unknown_topic"
    assert len(info.value.detail) <= 120
