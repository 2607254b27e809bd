"""Lighting masts on Zigbee2MQTT: commands at setup, reports, boosts, hand control, energy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
import json
from typing import Any
from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.light import (
    ATTR_BRIGHTNESS,
    ATTR_TRANSITION,
    DOMAIN as LIGHT_DOMAIN,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
)
from homeassistant.const import ATTR_ENTITY_ID, STATE_OFF, STATE_ON, STATE_UNKNOWN
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    MqttMockHAClient,
)

from custom_components.city_ops.const import DOMAIN, EVENT_LAMP_FAULT

from .conftest import SetupSite

# What these tests check is shown by entities that are disabled by default, too.
pytestmark = pytest.mark.usefixtures("every_entity_enabled")

BASE = {"state": "ON", "brightness": 76, "transition": 1.0}  # 30 % from nothing: up
BOOST = {"state": "ON", "brightness": 254, "transition": 1.0}
BACK_TO_BASE = {"state": "ON", "brightness": 76, "transition": 5.0}
NIGHT = {"state": "ON", "brightness": 25, "transition": 5.0}  # 10 %
OFF = {"state": "OFF", "transition": 1.0}
MASTS = [f"mast-{number}" for number in range(1, 8)]
HOLD = timedelta(seconds=120)


def local(hour: int, minute: int = 0) -> datetime:
    """A moment on 22 November 2026 in hass's time zone (US/Pacific in phcc)."""
    return dt_util.as_utc(
        datetime(2026, 11, 22, hour, minute, tzinfo=dt_util.get_default_time_zone())
    )


@pytest.fixture(autouse=True)
def sun() -> Iterator[MagicMock]:
    """The sun is down unless a test raises it (`sun.return_value = True`)."""
    with patch("custom_components.city_ops.street_lighting.is_up", return_value=False) as is_up:
        yield is_up


@pytest.fixture(autouse=True)
def evening(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """20:00 local: dark, and hours before the night window (23:30-05:00)."""
    freezer.move_to(local(20))


def commands(mqtt_mock: MqttMockHAClient) -> dict[str, list[dict[str, Any]]]:
    """Zigbee2MQTT /set payloads published since the last `clear`, by friendly name."""
    sent: dict[str, list[dict[str, Any]]] = {}
    for call in mqtt_mock.async_publish.call_args_list:
        topic, payload = call.args[0], call.args[1]
        if topic.startswith("zigbee2mqtt/") and topic.endswith("/set"):
            device = topic.removeprefix("zigbee2mqtt/").removesuffix("/set")
            sent.setdefault(device, []).append(json.loads(payload))
    return sent


def last(mqtt_mock: MqttMockHAClient) -> dict[str, dict[str, Any]]:
    return {device: sent[-1] for device, sent in commands(mqtt_mock).items()}


def clear(mqtt_mock: MqttMockHAClient) -> None:
    mqtt_mock.async_publish.reset_mock()


def entity_id(hass: HomeAssistant, device: str, key: str) -> str:
    """Find an entity the way dashboards do: device + translation key."""
    device_entry = next(d for d in dr.async_get(hass).devices if d.name == device)
    registry = er.async_get(hass)
    return next(
        e.entity_id
        for e in er.async_entries_for_device(registry, device_entry.id)
        if e.translation_key == key
    )


def has_entity(hass: HomeAssistant, device: str, key: str) -> bool:
    """Whether the device has an entity of that translation key (in the registry)."""
    device_entry = next(d for d in dr.async_get(hass).devices if d.name == device)
    return any(
        e.translation_key == key
        for e in er.async_entries_for_device(er.async_get(hass), device_entry.id)
    )


def state(hass: HomeAssistant, device: str, key: str) -> State:
    found = hass.states.get(entity_id(hass, device, key))
    assert found is not None
    return found


async def advance(hass: HomeAssistant, freezer: FrozenDateTimeFactory, delta: timedelta) -> None:
    freezer.tick(delta)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def report(hass: HomeAssistant, device: str, **payload: Any) -> None:
    async_fire_mqtt_message(hass, f"zigbee2mqtt/{device}", json.dumps(payload))
    await hass.async_block_till_done()


async def boost(hass: HomeAssistant, target: dict[str, Any], **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "boost", {**target, **data}, blocking=True, return_response=True
    )
    await hass.async_block_till_done()
    assert response is not None
    return dict(response)


# -- setup and restart -----------------------------------------------------------------------


async def test_setup_sends_every_mast_the_profile_level(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lighting: SetupSite
) -> None:
    await setup_lighting()
    assert commands(mqtt_mock) == {device: [BASE] for device in MASTS}
    light = state(hass, "M1", "light")
    assert light.state == STATE_ON
    assert light.attributes[ATTR_BRIGHTNESS] == 76  # 30 % of 255
    assert light.attributes["dark"] is True
    assert light.attributes["commanded_level"] == 30.0
    assert light.attributes["path"] == "Hauptweg"


async def test_light_is_named_after_its_mast(
    hass: HomeAssistant, setup_lighting: SetupSite
) -> None:
    """The luminaire is the mast's main feature: the entity carries the device's name."""
    await setup_lighting()
    light = state(hass, "M1", "light")
    assert light.attributes["friendly_name"] == "M1"
    assert light.entity_id == "light.m1"


async def test_setup_in_daylight_switches_every_mast_off(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lighting: SetupSite, sun: MagicMock
) -> None:
    sun.return_value = True
    await setup_lighting()
    assert last(mqtt_mock) == dict.fromkeys(MASTS, OFF)
    light = state(hass, "M1", "light")
    assert light.state == STATE_OFF
    assert light.attributes["dark"] is False


async def test_restart_mid_boost_keeps_the_boost_until_its_hold_ends(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    entry = await setup_lighting()
    await boost(hass, {ATTR_ENTITY_ID: entity_id(hass, "M3", "light")})
    await advance(hass, freezer, timedelta(seconds=60))
    clear(mqtt_mock)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    # Every mast is told its level again; the boosted ones stay boosted.
    assert last(mqtt_mock) == {
        device: BOOST if device in {"mast-2", "mast-3", "mast-4"} else BASE for device in MASTS
    }
    assert state(hass, "M3", "light").attributes["boost_until"] is not None
    clear(mqtt_mock)
    await advance(hass, freezer, timedelta(seconds=59))
    assert commands(mqtt_mock) == {}
    await advance(hass, freezer, timedelta(seconds=1))
    assert commands(mqtt_mock) == {
        "mast-2": [BACK_TO_BASE],
        "mast-3": [BACK_TO_BASE],
        "mast-4": [BACK_TO_BASE],
    }
    await advance(hass, freezer, timedelta(minutes=5))
    assert all(
        state(hass, f"M{number}", "light").attributes[ATTR_BRIGHTNESS] == 76
        for number in range(1, 8)
    )


async def test_restart_after_the_hold_ended_leaves_no_mast_at_boost(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The boost ended while the site was down: every mast ends at its base level."""
    entry = await setup_lighting()
    await boost(hass, {ATTR_ENTITY_ID: entity_id(hass, "M3", "light")})
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    freezer.tick(HOLD * 2)
    clear(mqtt_mock)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert last(mqtt_mock) == dict.fromkeys(MASTS, BASE)
    assert not any(BOOST in sent for sent in commands(mqtt_mock).values())


# -- reports ---------------------------------------------------------------------------------


async def test_reports_update_light_motion_illuminance_power_and_energy(
    hass: HomeAssistant, setup_lighting: SetupSite
) -> None:
    await setup_lighting()
    power = state(hass, "M1", "power")
    assert power.state == "12.0"  # 30 % of 40 W, estimated
    assert power.attributes["source"] == "estimated"
    assert state(hass, "M1", "energy").attributes["source"] == "estimated"
    # No motion or illuminance entity before the mast reported either (no permanent Unknown).
    assert not has_entity(hass, "M1", "motion")
    assert not has_entity(hass, "M1", "illuminance")

    await report(
        hass,
        "mast-1",
        state="ON",
        brightness=127,
        occupancy=True,
        illuminance=12,
        power=19.5,
        energy=812.5,
    )
    light = state(hass, "M1", "light")
    assert light.state == STATE_ON
    assert light.attributes[ATTR_BRIGHTNESS] == 128  # 127/254 = 50 % = 128/255
    assert state(hass, "M1", "motion").state == STATE_ON
    assert state(hass, "M1", "illuminance").state == "12.0"
    power = state(hass, "M1", "power")
    assert power.state == "19.5"
    assert power.attributes["source"] == "measured"
    before = float(state(hass, "M1", "energy").state)
    await report(hass, "mast-1", energy=813.0)  # the meter added 0.5 kWh
    energy = state(hass, "M1", "energy")
    assert float(energy.state) == pytest.approx(before + 0.5)
    assert energy.attributes["source"] == "measured"

    await report(hass, "mast-1", state="OFF", occupancy=False)
    assert state(hass, "M1", "light").state == STATE_OFF
    assert state(hass, "M1", "motion").state == STATE_OFF
    # Other masts heard nothing.
    assert not has_entity(hass, "M2", "motion")
    assert state(hass, "M2", "light").attributes[ATTR_BRIGHTNESS] == 76


@pytest.mark.parametrize(
    ("key", "payload"),
    [
        pytest.param("power", {"power": 12.0}, id="power-equal-to-the-estimate"),
        pytest.param("energy", {"energy": 812.5}, id="first-meter-reading"),
    ],
)
async def test_source_attribute_follows_a_meter_even_when_the_value_stays(
    hass: HomeAssistant, setup_lighting: SetupSite, key: str, payload: dict[str, Any]
) -> None:
    await setup_lighting()
    before = state(hass, "M1", key)
    assert before.attributes["source"] == "estimated"
    await report(hass, "mast-1", **payload)
    after = state(hass, "M1", key)
    assert after.state == before.state
    assert after.attributes["source"] == "measured"


async def test_separate_motion_sensor_feeds_its_mast(
    hass: HomeAssistant, setup_lighting: SetupSite
) -> None:
    await setup_lighting()
    await report(hass, "pir-7", occupancy=True, illuminance=4)
    assert state(hass, "M7", "motion").state == STATE_ON
    assert state(hass, "M7", "illuminance").state == "4.0"
    assert state(hass, "M7", "light").attributes[ATTR_BRIGHTNESS] == 76
    assert not has_entity(hass, "M6", "motion")  # M6 never reported motion


# -- boost -----------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["entity", "device"])
async def test_boost_lights_the_corridor(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lighting: SetupSite, by: str
) -> None:
    await setup_lighting()
    clear(mqtt_mock)
    if by == "entity":
        target = {ATTR_ENTITY_ID: entity_id(hass, "M3", "light")}
    else:
        device = next(d for d in dr.async_get(hass).devices if d.name == "M3")
        target = {"device_id": device.id}
    assert await boost(hass, target, radius=1) == {"boosted": ["M2", "M3", "M4"]}
    assert commands(mqtt_mock) == {"mast-2": [BOOST], "mast-3": [BOOST], "mast-4": [BOOST]}
    assert state(hass, "M3", "light").attributes[ATTR_BRIGHTNESS] == 255


async def test_boost_radius_and_hold_from_the_call(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup_lighting()
    clear(mqtt_mock)
    target = {ATTR_ENTITY_ID: entity_id(hass, "M3", "light")}
    response = await boost(hass, target, radius=2, hold=30)
    assert response == {"boosted": ["M1", "M2", "M3", "M4", "M5"]}
    clear(mqtt_mock)
    await advance(hass, freezer, timedelta(seconds=30))
    assert commands(mqtt_mock) == {f"mast-{n}": [BACK_TO_BASE] for n in range(1, 6)}


async def test_second_boost_sends_nothing_but_extends_the_hold(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup_lighting()
    target = {ATTR_ENTITY_ID: entity_id(hass, "M3", "light")}
    await boost(hass, target)
    await advance(hass, freezer, timedelta(seconds=60))
    clear(mqtt_mock)
    assert await boost(hass, target) == {"boosted": ["M2", "M3", "M4"]}
    # A neighbour's boost overlapping the corridor sends only to the mast not yet boosted.
    await boost(hass, {ATTR_ENTITY_ID: entity_id(hass, "M4", "light")})
    assert commands(mqtt_mock) == {"mast-5": [BOOST]}
    clear(mqtt_mock)
    await advance(hass, freezer, timedelta(seconds=61))  # past the first boost's end
    assert commands(mqtt_mock) == {}
    await advance(hass, freezer, timedelta(seconds=59))  # the second boost's end
    assert commands(mqtt_mock) == {f"mast-{n}": [BACK_TO_BASE] for n in (2, 3, 4, 5)}
    assert state(hass, "M3", "light").attributes[ATTR_BRIGHTNESS] == 76


async def test_boost_in_daylight_sends_nothing(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lighting: SetupSite, sun: MagicMock
) -> None:
    sun.return_value = True
    await setup_lighting()
    clear(mqtt_mock)
    await boost(hass, {ATTR_ENTITY_ID: entity_id(hass, "M3", "light")})
    assert commands(mqtt_mock) == {}
    assert state(hass, "M3", "light").state == STATE_OFF


async def test_boost_in_daylight_lights_a_mast_whose_sensor_reads_dark(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lighting: SetupSite, sun: MagicMock
) -> None:
    sun.return_value = True
    await setup_lighting()
    await report(hass, "mast-3", illuminance=5)  # under the 20 lx threshold
    clear(mqtt_mock)
    await boost(hass, {ATTR_ENTITY_ID: entity_id(hass, "M3", "light")})
    assert commands(mqtt_mock) == {"mast-3": [BOOST]}


async def test_a_dark_light_sensor_lights_its_mast_by_day(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
    sun: MagicMock,
) -> None:
    sun.return_value = True
    await setup_lighting()
    clear(mqtt_mock)
    await report(hass, "mast-3", illuminance=5)
    await report(hass, "mast-4", illuminance=300)
    await advance(hass, freezer, timedelta(minutes=1))
    assert commands(mqtt_mock) == {"mast-3": [BASE]}
    assert state(hass, "M3", "light").attributes["dark"] is True
    assert state(hass, "M4", "light").attributes["dark"] is False


async def test_boost_by_the_motion_sensor_only_where_it_is_dark(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lighting: SetupSite, sun: MagicMock
) -> None:
    """What the motion blueprint sends: the mast by its motion sensor, asked to judge the dark."""
    sun.return_value = True
    await setup_lighting()
    for device, lux in (("mast-3", 800), ("mast-5", 5)):
        await report(hass, device, occupancy=True, illuminance=lux)
    clear(mqtt_mock)
    daylit = {ATTR_ENTITY_ID: entity_id(hass, "M3", "motion")}
    assert await boost(hass, daylit, when_dark=True) == {"boosted": []}
    assert commands(mqtt_mock) == {}
    assert state(hass, "M3", "light").attributes["boost_until"] is None
    # The mast under trees (5 lx, under the 20 lx threshold) is dark at noon; its corridor
    # is boosted (the neighbours' level follows their own darkness: off in daylight).
    shaded = {ATTR_ENTITY_ID: entity_id(hass, "M5", "motion")}
    assert await boost(hass, shaded, when_dark=True) == {"boosted": ["M4", "M5", "M6"]}
    assert commands(mqtt_mock) == {"mast-5": [BOOST]}
    # Without `when_dark` the daylit mast is boosted too (an operator's choice).
    assert await boost(hass, daylit) == {"boosted": ["M2", "M3", "M4"]}


@pytest.mark.parametrize(
    "target",
    [
        pytest.param({ATTR_ENTITY_ID: "sensor.m3_power"}, id="mast-sensor"),
        pytest.param({ATTR_ENTITY_ID: "light.somewhere_else"}, id="unknown-light"),
    ],
)
async def test_boost_without_a_mast_in_the_target(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    target: dict[str, Any],
) -> None:
    await setup_lighting()
    assert hass.states.get("sensor.m3_power") is not None
    clear(mqtt_mock)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "boost", target, blocking=True, return_response=True)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "no_masts"
    assert commands(mqtt_mock) == {}


# -- hand control ----------------------------------------------------------------------------


async def test_hand_control_wins_for_an_hour(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup_lighting()
    m2 = entity_id(hass, "M2", "light")
    m5 = entity_id(hass, "M5", "light")
    clear(mqtt_mock)
    await hass.services.async_call(
        LIGHT_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: m2, ATTR_TRANSITION: 3}, blocking=True
    )
    await hass.services.async_call(
        LIGHT_DOMAIN,
        SERVICE_TURN_ON,
        {ATTR_ENTITY_ID: m5, ATTR_BRIGHTNESS: 128, ATTR_TRANSITION: 0.5},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == {
        "mast-2": [{"state": "OFF", "transition": 3}],
        "mast-5": [{"state": "ON", "brightness": 128, "transition": 0.5}],
    }
    assert hass.states.get(m2).state == STATE_OFF
    assert hass.states.get(m2).attributes["override_until"] is not None
    clear(mqtt_mock)
    # Neither the minute tick nor a boost next to it brings the profile back early.
    await boost(hass, {ATTR_ENTITY_ID: entity_id(hass, "M1", "light")})
    await advance(hass, freezer, timedelta(minutes=30))
    await advance(hass, freezer, timedelta(minutes=29))
    assert "mast-2" not in commands(mqtt_mock)
    assert "mast-5" not in commands(mqtt_mock)
    assert commands(mqtt_mock) == {"mast-1": [BOOST, BACK_TO_BASE]}
    clear(mqtt_mock)
    await advance(hass, freezer, timedelta(minutes=1))
    assert commands(mqtt_mock) == {"mast-2": [BASE], "mast-5": [BACK_TO_BASE]}
    assert hass.states.get(m2).attributes[ATTR_BRIGHTNESS] == 76


async def test_turn_on_without_brightness_is_full(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lighting: SetupSite
) -> None:
    await setup_lighting()
    clear(mqtt_mock)
    await hass.services.async_call(
        LIGHT_DOMAIN,
        SERVICE_TURN_ON,
        {ATTR_ENTITY_ID: entity_id(hass, "M4", "light")},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == {"mast-4": [BOOST]}  # 100 %, the profile's transition up


# -- night window ----------------------------------------------------------------------------


async def test_night_window_uses_the_night_level(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    freezer.move_to(local(23, 28))
    await setup_lighting()
    clear(mqtt_mock)
    await advance(hass, freezer, timedelta(minutes=1))
    assert commands(mqtt_mock) == {}
    await advance(hass, freezer, timedelta(minutes=1))  # 23:30
    assert commands(mqtt_mock) == {device: [NIGHT] for device in MASTS}
    # A boost in the night window still goes to the boost level, and back to the night level.
    clear(mqtt_mock)
    await boost(hass, {ATTR_ENTITY_ID: entity_id(hass, "M1", "light")}, radius=0)
    await advance(hass, freezer, HOLD)
    assert commands(mqtt_mock) == {"mast-1": [BOOST, NIGHT]}


async def test_night_window_with_night_level_zero_and_warm_light(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    lighting_site: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    lighting_site.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        lighting_site, options={**lighting_site.options, "night_level": 0, "warm_kelvin": 2000}
    )
    freezer.move_to(local(1))
    assert await hass.config_entries.async_setup(lighting_site.entry_id)
    await hass.async_block_till_done()
    assert last(mqtt_mock)["mast-1"] == {"state": "OFF", "transition": 1.0}
    clear(mqtt_mock)
    await boost(hass, {ATTR_ENTITY_ID: entity_id(hass, "M1", "light")}, radius=0)
    assert commands(mqtt_mock) == {
        "mast-1": [{"state": "ON", "brightness": 254, "transition": 1.0, "color_temp": 500}]
    }


# -- site energy -----------------------------------------------------------------------------


async def test_site_energy_sensors_only_with_masts(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    registry = er.async_get(hass)
    keys = {e.translation_key for e in er.async_entries_for_config_entry(registry, entry.entry_id)}
    assert "containers_due" in keys
    assert "lighting_energy" not in keys
    assert "lighting_savings" not in keys


async def test_site_energy_and_savings_move_with_time(
    hass: HomeAssistant, setup_lighting: SetupSite, freezer: FrozenDateTimeFactory
) -> None:
    await setup_lighting()
    energy = entity_id(hass, "Stadtpark", "lighting_energy")
    savings = entity_id(hass, "Stadtpark", "lighting_savings")
    assert hass.states.get(energy).state == "0.0"
    assert hass.states.get(energy).attributes["unit_of_measurement"] == "kWh"
    assert hass.states.get(savings).state == STATE_UNKNOWN
    for _ in range(60):
        await advance(hass, freezer, timedelta(minutes=1))
    # Seven masts at 30 % of 40 W for an hour, against all of them at full power.
    assert float(hass.states.get(energy).state) == pytest.approx(7 * 0.012, abs=1e-4)
    assert float(hass.states.get(savings).state) == pytest.approx(70.0, abs=0.1)
    assert float(state(hass, "M1", "energy").state) == pytest.approx(0.012, abs=1e-4)


async def test_energy_is_written_when_a_shown_watt_hour_is_reached(
    hass: HomeAssistant, setup_lighting: SetupSite, freezer: FrozenDateTimeFactory
) -> None:
    """A mast at 12 W gains 0.2 Wh a minute: its energy state moves every fifth minute.

    Written at every minute tick, each mast's energy cost a state write and a recorder row
    per minute with no change the kWh shown to 3 decimals could tell.
    """
    await setup_lighting()
    mast_energy = entity_id(hass, "M1", "energy")
    site_energy = entity_id(hass, "Stadtpark", "lighting_energy")
    written: dict[str, list[str]] = {mast_energy: [], site_energy: []}

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        if (new := event.data["new_state"]) is not None:
            written[event.data["entity_id"]].append(new.state)

    unsubscribe = async_track_state_change_event(hass, list(written), record)
    for _ in range(60):
        await advance(hass, freezer, timedelta(minutes=1))
    unsubscribe()
    # Seven masts at 30 % of 40 W: 0.2 Wh a minute each, 1.4 Wh a minute for the site.
    assert [float(value) for value in written[mast_energy]] == pytest.approx(
        [n / 1000 for n in range(1, 13)]
    )
    assert 35 <= len(written[site_energy]) <= 60  # 84 Wh in an hour, to the watt-hour
    assert float(written[site_energy][-1]) == pytest.approx(0.084, abs=1e-3)


# -- lamp fault ------------------------------------------------------------------------------


async def test_lamp_fault_when_on_but_drawing_nothing(
    hass: HomeAssistant, setup_lighting: SetupSite, freezer: FrozenDateTimeFactory
) -> None:
    events = async_capture_events(hass, EVENT_LAMP_FAULT)
    await setup_lighting()
    await report(hass, "mast-1", state="ON", brightness=76, power=0.1)  # settling: no evidence
    await advance(hass, freezer, timedelta(seconds=30))
    await report(hass, "mast-1", state="ON", brightness=76, power=0.1)
    await report(hass, "mast-2", state="ON", brightness=76, power=11.8)
    suspected_at = dt_util.utcnow()
    assert state(hass, "M1", "lamp_fault").state == STATE_OFF
    await advance(hass, freezer, timedelta(minutes=2))
    fault = state(hass, "M1", "lamp_fault")
    assert fault.state == STATE_ON
    assert fault.attributes["fault_kind"] == "lamp_failure"
    assert fault.attributes["since"] == suspected_at.isoformat()
    assert fault.attributes["faults"] == ["lamp_failure"]
    assert state(hass, "M2", "lamp_fault").state == STATE_OFF
    # The other masts never answered their commands: that is another fault of theirs.
    assert [(e.data["kind"], e.data["active"]) for e in events if e.data["name"] == "M1"] == [
        ("lamp_failure", True)
    ]
    await report(hass, "mast-1", power=11.9)
    assert state(hass, "M1", "lamp_fault").state == STATE_OFF
    assert [e.data for e in events if e.data["name"] == "M1"][-1]["active"] is False


async def test_boosts_on_a_busy_path_do_not_hide_a_dead_lamp(
    hass: HomeAssistant, setup_lighting: SetupSite, freezer: FrozenDateTimeFactory
) -> None:
    """Walkers keep boosting the dead lamp; each answer says 0.4 W; the fault still comes."""
    await setup_lighting()
    await advance(hass, freezer, timedelta(seconds=30))
    await report(hass, "mast-3", state="ON", brightness=76, power=0.4)
    light = {ATTR_ENTITY_ID: entity_id(hass, "M3", "light")}
    for _ in range(5):
        await boost(hass, light, hold=20)
        await report(hass, "mast-3", state="ON", brightness=254, power=0.4)
        await advance(hass, freezer, timedelta(seconds=30))
        await report(hass, "mast-3", state="ON", brightness=76, power=0.4)
    assert state(hass, "M3", "lamp_fault").state == STATE_ON


async def test_lamp_fault_when_burning_in_daylight(
    hass: HomeAssistant,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
    sun: MagicMock,
) -> None:
    sun.return_value = True
    await setup_lighting()
    await advance(hass, freezer, timedelta(seconds=30))
    await report(hass, "mast-1", state="ON", brightness=200)
    await report(hass, "mast-2", state="OFF")
    await advance(hass, freezer, timedelta(minutes=3))
    assert state(hass, "M1", "lamp_fault").attributes["fault_kind"] == "day_burner"
    assert state(hass, "M2", "lamp_fault").state == STATE_OFF


async def test_a_silent_luminaire_is_asked_again_then_reported(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup_lighting()
    await report(hass, "mast-1", state="ON", brightness=76)
    await report(hass, "pir-7", occupancy=True)  # M7's PIR talks; its luminaire does not
    await advance(hass, freezer, timedelta(seconds=61))  # asked on the minute tick
    asked = {
        call.args[0]: json.loads(call.args[1])
        for call in mqtt_mock.async_publish.call_args_list
        if call.args[0].endswith("/get")
    }
    assert sorted(asked) == [f"zigbee2mqtt/mast-{n}/get" for n in range(2, 8)]
    assert asked["zigbee2mqtt/mast-2/get"] == {"state": "", "brightness": ""}
    await report(hass, "mast-3", state="ON", brightness=76)  # M3 answers the question
    await advance(hass, freezer, timedelta(minutes=3))
    assert state(hass, "M1", "lamp_fault").state == STATE_OFF
    assert state(hass, "M3", "lamp_fault").state == STATE_OFF
    fault = state(hass, "M2", "lamp_fault")
    assert fault.state == STATE_ON
    assert fault.attributes["fault_kind"] == "no_communication"
    assert state(hass, "M7", "lamp_fault").state == STATE_ON


async def test_offline_makes_the_mast_unavailable_and_online_brings_it_back(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await setup_lighting()
    await report(hass, "mast-2", state="ON", brightness=76)
    async_fire_mqtt_message(hass, "zigbee2mqtt/mast-2/availability", '{"state":"offline"}')
    async_fire_mqtt_message(hass, "zigbee2mqtt/mast-2/availability", '{"state":"offline"}')
    async_fire_mqtt_message(hass, "zigbee2mqtt/bin-9/availability", '{"state":"offline"}')
    async_fire_mqtt_message(hass, "zigbee2mqtt/mast-3/availability", "garbage")
    await hass.async_block_till_done()
    assert state(hass, "M2", "light").state == "unavailable"
    assert state(hass, "M2", "power").state == "unavailable"
    fault = state(hass, "M2", "lamp_fault")
    assert fault.state == STATE_ON
    assert fault.attributes["fault_kind"] == "no_communication"
    assert state(hass, "M3", "light").state == STATE_ON
    assert caplog.text.count("M2 is offline") == 1
    clear(mqtt_mock)
    async_fire_mqtt_message(hass, "zigbee2mqtt/mast-2/availability", "online")
    await hass.async_block_till_done()
    assert state(hass, "M2", "light").state == STATE_ON
    assert state(hass, "M2", "lamp_fault").state == STATE_OFF
    assert commands(mqtt_mock) == {"mast-2": [BASE]}  # told its level again
    assert caplog.text.count("M2 is reachable again") == 1


async def test_a_mast_offline_for_minutes_is_clear_when_back(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Boosted and asked again while away, the mast's fault still ends when it is back."""
    await setup_lighting()
    await report(hass, "mast-2", state="ON", brightness=76)
    events = async_capture_events(hass, EVENT_LAMP_FAULT)
    async_fire_mqtt_message(hass, "zigbee2mqtt/mast-2/availability", '{"state":"offline"}')
    await hass.async_block_till_done()
    await boost(hass, {ATTR_ENTITY_ID: entity_id(hass, "M2", "light")}, hold=600)
    clear(mqtt_mock)
    for _ in range(4):  # minute ticks ask it again
        await advance(hass, freezer, timedelta(minutes=1))
    await advance(hass, freezer, timedelta(seconds=30))  # back between two ticks
    assert any(call.args[0] == "zigbee2mqtt/mast-2/get" for call in mqtt_publish(mqtt_mock))
    assert state(hass, "M2", "lamp_fault").attributes["fault_kind"] == "no_communication"

    async_fire_mqtt_message(hass, "zigbee2mqtt/mast-2/availability", '{"state":"online"}')
    await hass.async_block_till_done()
    fault = state(hass, "M2", "lamp_fault")
    assert fault.state == STATE_OFF
    assert fault.attributes["fault_kind"] is None
    assert [(e.data["kind"], e.data["active"]) for e in events if e.data["name"] == "M2"] == [
        ("no_communication", True),
        ("no_communication", False),
    ]
    # It answers the level it is told on coming back: nothing is raised again.
    await report(hass, "mast-2", state="ON", brightness=254)
    await advance(hass, freezer, timedelta(minutes=5))
    assert state(hass, "M2", "lamp_fault").state == STATE_OFF
    assert len([event for event in events if event.data["name"] == "M2"]) == 2


async def test_a_mast_back_online_but_silent_is_reported_after_the_grace_again(
    hass: HomeAssistant, setup_lighting: SetupSite, freezer: FrozenDateTimeFactory
) -> None:
    await setup_lighting()
    await report(hass, "mast-2", state="ON", brightness=76)
    async_fire_mqtt_message(hass, "zigbee2mqtt/mast-2/availability", '{"state":"offline"}')
    for _ in range(3):
        await advance(hass, freezer, timedelta(minutes=1))
    await advance(hass, freezer, timedelta(seconds=30))
    async_fire_mqtt_message(hass, "zigbee2mqtt/mast-2/availability", '{"state":"online"}')
    await hass.async_block_till_done()
    back = dt_util.utcnow()
    assert state(hass, "M2", "lamp_fault").state == STATE_OFF
    await advance(hass, freezer, timedelta(minutes=1))
    assert state(hass, "M2", "lamp_fault").state == STATE_OFF  # asked again, not yet judged
    await advance(hass, freezer, timedelta(minutes=3))
    fault = state(hass, "M2", "lamp_fault")
    assert fault.state == STATE_ON
    assert fault.attributes["fault_kind"] == "no_communication"
    assert fault.attributes["since"] == back.isoformat()


def mqtt_publish(mqtt_mock: MqttMockHAClient) -> list[Any]:
    return list(mqtt_mock.async_publish.call_args_list)


async def test_a_lamp_faulty_for_a_day_raises_a_repair_issue(
    hass: HomeAssistant, setup_lighting: SetupSite, freezer: FrozenDateTimeFactory
) -> None:
    await setup_lighting()
    await advance(hass, freezer, timedelta(seconds=30))
    await report(hass, "mast-1", state="ON", brightness=76, power=0.1)
    registry = ir.async_get(hass)
    await advance(hass, freezer, timedelta(hours=23))
    assert registry.async_get_issue(DOMAIN, f"lamp_fault_{asset_id(hass, 'M1')}") is None
    await advance(hass, freezer, timedelta(hours=1, minutes=1))
    issue = registry.async_get_issue(DOMAIN, f"lamp_fault_{asset_id(hass, 'M1')}")
    assert issue is not None
    assert issue.translation_key == "lamp_fault_lamp_failure"
    assert issue.translation_placeholders["mast"] == "M1"
    await report(hass, "mast-1", power=11.9)
    assert registry.async_get_issue(DOMAIN, f"lamp_fault_{asset_id(hass, 'M1')}") is None


def asset_id(hass: HomeAssistant, device: str) -> str:
    entry = er.async_get(hass).async_get(entity_id(hass, device, "light"))
    assert entry is not None
    assert entry.config_subentry_id is not None
    return entry.config_subentry_id


# -- diagnostics -----------------------------------------------------------------------------


async def test_diagnostics_with_masts(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, setup_lighting: SetupSite
) -> None:
    entry = await setup_lighting()
    await report(hass, "mast-1", state="ON", brightness=76, power=12)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["entry"]["title"] == "Stadtpark"
    assert diagnostics["messages"]["applied"] == 1
    assert diagnostics["containers"] == {}
    json.dumps(diagnostics)


async def test_a_broker_refusing_commands_is_counted_not_raised(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A publish that fails (broker gone) must not surface as an unhandled task error."""
    entry = await setup_lighting()
    mqtt_mock.async_publish.side_effect = HomeAssistantError("broker gone")
    target = {ATTR_ENTITY_ID: entity_id(hass, "M3", "light")}
    assert await boost(hass, target, radius=1) == {"boosted": ["M2", "M3", "M4"]}
    await hass.async_block_till_done()
    assert entry.runtime_data.lighting.command_errors == 3
    assert "Command to zigbee2mqtt/mast-3/set failed: broker gone" in caplog.text
    assert "Task exception was never retrieved" not in caplog.text
