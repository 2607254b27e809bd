"""sources/zha.py against ZHA running on our fake zigpy radio (real zigpy frames both ways)."""

from __future__ import annotations

import math
from typing import Any

from homeassistant.core import HomeAssistant
import pytest
from zigpy.exceptions import DeliveryError
from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import Basic, LevelControl, OnOff, PowerConfiguration
from zigpy.zcl.clusters.homeautomation import ElectricalMeasurement
from zigpy.zcl.clusters.measurement import IlluminanceMeasurement, OccupancySensing
from zigpy.zcl.clusters.smartenergy import Metering

from custom_components.city_ops.sources.reading import Reading
from custom_components.city_ops.sources.zha import ZhaCommandError, ZhaDevices, ieee_key

# The fixtures (setup_zha, make_zigpy_device, ...) until tests/components/conftest.py imports them.
from .zha_fixtures import *  # noqa: F403
from .zha_fixtures import FakeRadio, MakeZigpyDevice, ZhaNetwork, settle_zha

LUMINAIRE = "00:0d:6f:00:0a:90:69:e7"
SENSOR = "00:15:8d:00:04:5c:1e:22"
UNKNOWN = "00:0d:6f:ff:ff:ff:ff:01"

LUMINAIRE_ENDPOINTS = {
    1: {
        "in": [Basic, OnOff, LevelControl, ElectricalMeasurement, Metering],
        "device_type": 0x0101,  # dimmable light
    }
}
# What the luminaire answers when ZHA reads its scale attributes at join.
LUMINAIRE_SCALES = {
    1: {
        ElectricalMeasurement.cluster_id: {"ac_power_multiplier": 1, "ac_power_divisor": 10},
        Metering.cluster_id: {"multiplier": 1, "divisor": 1000, "unit_of_measure": 0},
    }
}
SENSOR_ENDPOINTS = {
    1: {
        "in": [Basic, PowerConfiguration, OccupancySensing, IlluminanceMeasurement],
        "device_type": 0x0107,  # occupancy sensor
    }
}


class Collector:
    """on_reading that keeps what it was given."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []

    def __call__(self, reading: Reading) -> None:
        self.readings.append(reading)

    def take(self) -> list[Reading]:
        taken, self.readings = self.readings, []
        return taken


@pytest.fixture
async def site(
    hass: HomeAssistant, setup_zha: ZhaNetwork, make_zigpy_device: MakeZigpyDevice
) -> ZhaNetwork:
    """ZHA on the fake radio with one luminaire and one PIR/light sensor joined."""
    await make_zigpy_device(
        LUMINAIRE, LUMINAIRE_ENDPOINTS, model="Mast luminaire", attributes=LUMINAIRE_SCALES
    )
    await make_zigpy_device(SENSOR, SENSOR_ENDPOINTS, model="PIR lux", mains_powered=False)
    return setup_zha


@pytest.fixture
async def started(hass: HomeAssistant, site: ZhaNetwork) -> tuple[ZhaDevices, Collector]:
    collector = Collector()
    devices = ZhaDevices(hass, collector)
    assert devices.async_start([LUMINAIRE, SENSOR]) == []
    collector.take()
    return devices, collector


def _device(site: ZhaNetwork, ieee: str) -> Any:
    return site.devices[ieee]


# -- availability and start ------------------------------------------------------------------


async def test_not_available_without_zha(hass: HomeAssistant) -> None:
    assert ZhaDevices.available(hass) is False
    devices = ZhaDevices(hass, Collector())
    assert devices.async_start([LUMINAIRE]) == [LUMINAIRE]
    with pytest.raises(ZhaCommandError) as err:
        await devices.async_set_level(LUMINAIRE, 50, 1)
    assert err.value.reason == "zha_unavailable"
    devices.async_stop()


async def test_available_while_zha_runs(hass: HomeAssistant, setup_zha: ZhaNetwork) -> None:
    assert ZhaDevices.available(hass) is True
    assert await hass.config_entries.async_unload(setup_zha.entry.entry_id)
    await hass.async_block_till_done()
    assert ZhaDevices.available(hass) is False


async def test_start_returns_devices_not_found(hass: HomeAssistant, site: ZhaNetwork) -> None:
    devices = ZhaDevices(hass, Collector())
    missing = devices.async_start([LUMINAIRE.upper(), SENSOR.replace(":", ""), UNKNOWN, "lamp 7"])
    assert missing == [UNKNOWN, "lamp 7"]
    devices.async_stop()


IEEE_KEYS: list[tuple[object, str | None]] = [
    ("00:0D:6F:00:0A:90:69:E7", LUMINAIRE),
    ("000d6f000a9069e7", LUMINAIRE),
    ("0x000d6f000a9069e7", LUMINAIRE),
    (" 00-0d-6f-00-0a-90-69-e7 ", LUMINAIRE),
    ("00:0d:6f:00:0a:90:69", None),
    ("zz:0d:6f:00:0a:90:69:e7", None),
    ("", None),
    (None, None),
    (42, None),
]


def test_ieee_key() -> None:
    for text, key in IEEE_KEYS:
        assert ieee_key(text) == key, text


# -- reports in ------------------------------------------------------------------------------


# (device, cluster, attributes in one Report_Attributes frame, expected Reading fields)
REPORTS: list[tuple[str, Any, dict[str, Any], dict[str, Any]]] = [
    (LUMINAIRE, OnOff, {"on_off": True}, {"on": True}),
    (LUMINAIRE, OnOff, {"on_off": False}, {"on": False}),
    (LUMINAIRE, LevelControl, {"current_level": 127}, {"brightness": 127.0}),
    (LUMINAIRE, LevelControl, {"current_level": 0}, {"brightness": 0.0}),
    (LUMINAIRE, ElectricalMeasurement, {"active_power": 455}, {"power_w": 45.5}),
    (LUMINAIRE, Metering, {"current_summ_delivered": 123456}, {"energy_kwh": 123.456}),
    (SENSOR, OccupancySensing, {"occupancy": 1}, {"occupancy": True}),
    (SENSOR, OccupancySensing, {"occupancy": 0}, {"occupancy": False}),
    (SENSOR, IlluminanceMeasurement, {"measured_value": 0}, {"illuminance_lx": 0.0}),
    (SENSOR, IlluminanceMeasurement, {"measured_value": 10001}, {"illuminance_lx": 10.0}),
    (SENSOR, IlluminanceMeasurement, {"measured_value": 30001}, {"illuminance_lx": 1000.0}),
    (SENSOR, PowerConfiguration, {"battery_percentage_remaining": 151}, {"battery_percent": 75.5}),
]


async def test_report_frames_become_readings(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    _, collector = started
    for ieee, cluster, attributes, expected in REPORTS:
        site.app.report(_device(site, ieee), 1, cluster.cluster_id, attributes)
        readings = collector.take()
        case = f"{cluster.__name__} {attributes}"
        assert len(readings) == 1, case
        (reading,) = readings
        assert reading == Reading(device=ieee, **{n: getattr(reading, n) for n in expected}), case
        for name, value in expected.items():
            assert getattr(reading, name) == pytest.approx(value), case


async def test_one_frame_with_several_attributes(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    _, collector = started
    luminaire = _device(site, LUMINAIRE)
    # The scale attributes are cached, not readings; the multiplier changes the next power.
    site.app.report(luminaire, 1, ElectricalMeasurement.cluster_id, {"ac_power_divisor": 100})
    site.app.report(luminaire, 1, LevelControl.cluster_id, {"current_level": 254, "on_level": 3})
    site.app.report(luminaire, 1, ElectricalMeasurement.cluster_id, {"active_power": 4200})
    assert collector.take() == [
        Reading(device=LUMINAIRE, brightness=254.0),
        Reading(device=LUMINAIRE, power_w=42.0),
    ]


async def test_energy_without_scale_attributes_is_taken_as_kwh(
    hass: HomeAssistant, site: ZhaNetwork, make_zigpy_device: MakeZigpyDevice
) -> None:
    """ZHA's rule: multiplier and divisor default to 1, unknown unit means kWh."""
    meter = await make_zigpy_device(UNKNOWN, {1: {"in": [Metering], "device_type": 0x0501}})
    collector = Collector()
    devices = ZhaDevices(hass, collector)
    assert devices.async_start([UNKNOWN]) == []
    site.app.report(meter, 1, Metering.cluster_id, {"current_summ_delivered": 17})
    assert collector.take() == [Reading(device=UNKNOWN, energy_kwh=17.0)]
    devices.async_stop()


# (device, cluster, attributes of a frame, the field rejected)
OUT_OF_RANGE: list[tuple[str, Any, dict[str, Any], str]] = [
    (LUMINAIRE, LevelControl, {"current_level": 255}, "level.current_level"),
    (
        LUMINAIRE,
        ElectricalMeasurement,
        {"active_power": -32768},
        "electrical_measurement.active_power",
    ),
    (
        LUMINAIRE,
        ElectricalMeasurement,
        {"active_power": -50},
        "electrical_measurement.active_power",
    ),
    (
        LUMINAIRE,
        Metering,
        {"current_summ_delivered": 0xFFFFFFFFFFFF},
        "smartenergy_metering.current_summ_delivered",
    ),
    (SENSOR, IlluminanceMeasurement, {"measured_value": 0xFFFF}, "illuminance.measured_value"),
    (SENSOR, IlluminanceMeasurement, {"measured_value": 60000}, "illuminance.measured_value"),
    (
        SENSOR,
        PowerConfiguration,
        {"battery_percentage_remaining": 255},
        "power.battery_percentage_remaining",
    ),
]


async def test_out_of_range_reports_are_rejected(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    _, collector = started
    for ieee, cluster, attributes, field in OUT_OF_RANGE:
        site.app.report(_device(site, ieee), 1, cluster.cluster_id, attributes)
        assert collector.take() == [Reading(device=ieee, rejected=(field,))], attributes


# (device, cluster, attribute, a value no ZCL frame can carry, the field rejected)
GARBAGE: list[tuple[str, Any, str, Any, str]] = [
    (LUMINAIRE, OnOff, "on_off", "yes", "on_off.on_off"),
    (LUMINAIRE, OnOff, "on_off", 2, "on_off.on_off"),
    (LUMINAIRE, LevelControl, "current_level", 12.5, "level.current_level"),
    (LUMINAIRE, ElectricalMeasurement, "active_power", True, "electrical_measurement.active_power"),
    (
        LUMINAIRE,
        Metering,
        "current_summ_delivered",
        [1, 2],
        "smartenergy_metering.current_summ_delivered",
    ),
    (SENSOR, OccupancySensing, "occupancy", "occupied", "occupancy.occupancy"),
    (SENSOR, IlluminanceMeasurement, "measured_value", math.nan, "illuminance.measured_value"),
    (SENSOR, IlluminanceMeasurement, "measured_value", 10**40, "illuminance.measured_value"),
]


async def test_garbage_from_quirks_is_rejected_not_raised(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    """A quirk can put anything into the cache (`update_attribute` skips type conversion)."""
    _, collector = started
    for ieee, cluster, attribute, value, field in GARBAGE:
        _device(site, ieee).endpoints[1].in_clusters[cluster.cluster_id].update_attribute(
            cluster.find_attribute(attribute).id, value
        )
        assert collector.take() == [Reading(device=ieee, rejected=(field,))], (attribute, value)


async def test_energy_in_another_unit_is_rejected(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    _, collector = started
    luminaire = _device(site, LUMINAIRE)
    site.app.report(luminaire, 1, Metering.cluster_id, {"unit_of_measure": 1})  # m³
    site.app.report(luminaire, 1, Metering.cluster_id, {"current_summ_delivered": 5})
    assert collector.take() == [
        Reading(device=LUMINAIRE, rejected=("smartenergy_metering.current_summ_delivered",))
    ]


async def test_unused_attributes_and_clusters_give_no_reading(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    _, collector = started
    luminaire = _device(site, LUMINAIRE)
    site.app.report(luminaire, 1, OnOff.cluster_id, {"on_time": 30})
    site.app.report(luminaire, 1, Basic.cluster_id, {"sw_build_id": "1.0"})
    site.app.report(luminaire, 1, ElectricalMeasurement.cluster_id, {"rms_voltage": 230})
    assert collector.take() == []


async def test_devices_with_several_endpoints(
    hass: HomeAssistant, site: ZhaNetwork, make_zigpy_device: MakeZigpyDevice
) -> None:
    """A mast controller: the lamp on endpoint 1, its PIR on endpoint 2, a second lamp on 3."""
    mast = await make_zigpy_device(
        UNKNOWN,
        {
            1: {"in": [OnOff, LevelControl], "device_type": 0x0101},
            2: {"in": [OccupancySensing], "device_type": 0x0107},
            3: {"in": [OnOff, LevelControl], "device_type": 0x0101},
        },
    )
    collector = Collector()
    devices = ZhaDevices(hass, collector)
    assert devices.async_start([UNKNOWN]) == []
    site.app.report(mast, 2, OccupancySensing.cluster_id, {"occupancy": 1})
    site.app.report(mast, 3, LevelControl.cluster_id, {"current_level": 20})
    assert collector.take() == [
        Reading(device=UNKNOWN, occupancy=True),
        Reading(device=UNKNOWN, brightness=20.0),
    ]
    site.app.sent.clear()
    await devices.async_set_level(UNKNOWN, 100, 0)
    (command,) = site.app.commands(LevelControl.cluster_id)
    assert command.endpoint_id == 1
    devices.async_stop()


async def test_a_failing_consumer_does_not_break_zigpy(
    hass: HomeAssistant, site: ZhaNetwork, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(reading: Reading) -> None:
        raise RuntimeError("bug in the consumer")

    devices = ZhaDevices(hass, explode)
    devices.async_start([LUMINAIRE])
    luminaire = _device(site, LUMINAIRE)
    site.app.report(luminaire, 1, OnOff.cluster_id, {"on_off": True})
    await hass.async_block_till_done()
    assert "Unexpected error handling a ZHA attribute" in caplog.text
    # zigpy went on: the value reached the cache and ZHA's own light entity.
    assert luminaire.endpoints[1].on_off.get("on_off") == 1
    assert hass.states.get("light.city_ops_test_mast_luminaire").state == "on"
    devices.async_stop()


async def test_stop_removes_every_listener(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    devices, collector = started
    luminaire, sensor = _device(site, LUMINAIRE), _device(site, SENSOR)
    devices.async_stop()
    site.app.report(luminaire, 1, OnOff.cluster_id, {"on_off": True})
    site.app.report(sensor, 1, OccupancySensing.cluster_id, {"occupancy": 1})
    luminaire.endpoints[1].level.update_attribute(0x0000, 10)
    assert collector.take() == []
    devices.async_stop()  # twice is harmless


async def test_follows_a_re_interviewed_device(
    hass: HomeAssistant, site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    """zigpy swaps in a new device object after a re-interview (e.g. after an OTA update)."""
    _, collector = started
    old = _device(site, SENSOR)
    new = type(old)(site.app, old.ieee, old.nwk)
    new.node_desc = old.node_desc
    for endpoint_id, endpoint in old.endpoints.items():
        if endpoint_id == 0:
            continue
        copy = new.add_endpoint(endpoint_id)
        copy.status, copy.profile_id, copy.device_type = (
            endpoint.status,
            endpoint.profile_id,
            endpoint.device_type,
        )
        for cluster_id in endpoint.in_clusters:
            copy.add_input_cluster(cluster_id)
    new.status = old.status
    site.app.devices[new.ieee] = new
    site.app.listener_event("device_reinterviewed", new)
    await settle_zha(hass, site)
    old.endpoints[1].occupancy.update_attribute(0x0000, 1)
    assert collector.take() == []
    site.app.report(new, 1, OccupancySensing.cluster_id, {"occupancy": 1})
    assert collector.take() == [Reading(device=SENSOR, occupancy=True)]


async def test_a_device_joining_later_is_picked_up(
    hass: HomeAssistant, site: ZhaNetwork, make_zigpy_device: MakeZigpyDevice
) -> None:
    collector = Collector()
    devices = ZhaDevices(hass, collector)
    assert devices.async_start([LUMINAIRE, UNKNOWN]) == [UNKNOWN]
    late = await make_zigpy_device(UNKNOWN, {1: {"in": [OccupancySensing], "device_type": 0x0107}})
    collector.take()  # ZHA's reads at join
    site.app.report(late, 1, OccupancySensing.cluster_id, {"occupancy": 1})
    assert collector.take() == [Reading(device=UNKNOWN, occupancy=True)]
    devices.async_stop()


# -- commands out ----------------------------------------------------------------------------


# (level %, transition s) -> (LevelControl level, transition_time in tenths)
LEVELS: list[tuple[float, float, int, int]] = [
    (50, 1.5, 127, 15),
    (100, 0, 254, 0),
    (30.0, 5, 76, 50),
    (0, 5, 0, 50),  # level 0 with on/off: the lamp switches off
    (0.1, 0.04, 0, 0),
]


async def test_set_level_sends_move_to_level_with_on_off(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    devices, _ = started
    for level_pct, transition_s, level, transition_time in LEVELS:
        site.app.sent.clear()
        await devices.async_set_level(LUMINAIRE.upper(), level_pct, transition_s)
        (command,) = site.app.commands()
        assert (command.ieee, command.endpoint_id, command.cluster_id, command.command) == (
            LUMINAIRE,
            1,
            LevelControl.cluster_id,
            "move_to_level_with_on_off",
        )
        assert (command.args["level"], command.args["transition_time"]) == (
            level,
            transition_time,
        ), (level_pct, transition_s)


async def test_set_level_on_unknown_or_unsuitable_devices(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    devices, _ = started
    for ieee, reason in (
        (UNKNOWN, "unknown_device"),
        (SENSOR, "no_level_control"),
        ("x", "invalid_ieee"),
    ):
        with pytest.raises(ZhaCommandError) as err:
            await devices.async_set_level(ieee, 50, 1)
        assert err.value.reason == reason


BAD_ARGUMENTS: list[tuple[Any, Any, str]] = [
    (101, 1, "invalid_level"),
    (-1, 1, "invalid_level"),
    (math.nan, 1, "invalid_level"),
    ("50", 1, "invalid_level"),
    (50, -1, "invalid_transition"),
    (50, math.inf, "invalid_transition"),
    (50, 7000, "invalid_transition"),
    (True, 1, "invalid_level"),
]


async def test_set_level_refuses_bad_arguments(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    devices, _ = started
    site.app.sent.clear()
    for level_pct, transition_s, reason in BAD_ARGUMENTS:
        with pytest.raises(ZhaCommandError) as err:
            await devices.async_set_level(LUMINAIRE, level_pct, transition_s)
        assert err.value.reason == reason, (level_pct, transition_s)
    assert site.app.commands() == []


async def test_set_level_delivery_failures(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    devices, _ = started
    failures = [
        (DeliveryError("no ACK from the lamp"), "delivery_failed"),
        (TimeoutError(), "timeout"),
    ]
    for failure, reason in failures:
        site.app.send_error = failure
        with pytest.raises(ZhaCommandError) as err:
            await devices.async_set_level(LUMINAIRE, 50, 1)
        assert err.value.reason == reason
        assert isinstance(err.value.__cause__, type(failure))


async def test_set_level_refused_by_the_device(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    devices, _ = started
    site.app.command_status = foundation.Status.FAILURE
    with pytest.raises(ZhaCommandError) as err:
        await devices.async_set_level(LUMINAIRE, 50, 1)
    assert err.value.reason == "rejected"


def test_fake_radio_is_a_zigpy_application() -> None:
    """Guard: the fixtures' radio must stay a real zigpy application (no MagicMock)."""
    from zigpy.application import ControllerApplication  # noqa: PLC0415

    assert issubclass(FakeRadio, ControllerApplication)
