"""Darkness as Home Assistant knows it: the `sun.sun` entity and the masts' light sensors.

Nothing inside the integration is patched here: the sun is moved through its entity (set by
hand, or by the sun integration on a frozen clock) and the light through the sensors'
reports, and the masts must follow at once (the darkness cache follows those changes).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_fire_time_changed
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from .conftest import SetupSite
from .test_masts import BASE, BOOST, boost, clear, commands, report, state

SUN = "sun.sun"
BELOW, ABOVE = "below_horizon", "above_horizon"
OFF_SLOWLY = {"state": "OFF", "transition": 5.0}


def light(hass: HomeAssistant, mast: str) -> dict[str, object]:
    """The light's `dark` attribute and the level it was told."""
    attributes = state(hass, mast, "light").attributes
    return {"dark": attributes["dark"], "commanded_level": attributes["commanded_level"]}


async def test_the_sun_entity_decides_dusk_and_dawn_at_once(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lighting: SetupSite
) -> None:
    hass.states.async_set(SUN, BELOW)
    entry = await setup_lighting()
    assert last_levels(mqtt_mock) == dict.fromkeys(MASTS, BASE)
    assert light(hass, "M3") == {"dark": True, "commanded_level": 30}

    clear(mqtt_mock)
    hass.states.async_set(SUN, ABOVE)  # dawn: no minute tick needed
    await hass.async_block_till_done()
    assert entry.runtime_data.lighting.sun_down() is False
    assert last_levels(mqtt_mock) == dict.fromkeys(MASTS, OFF_SLOWLY)
    assert light(hass, "M3") == {"dark": False, "commanded_level": 0}

    clear(mqtt_mock)
    target = {"entity_id": state(hass, "M3", "light").entity_id}
    assert (await boost(hass, target))["boosted"] == ["M2", "M3", "M4"]
    assert commands(mqtt_mock) == {}  # by day a boost lights nothing

    hass.states.async_set(SUN, ABOVE, {"elevation": 12.5})  # the position moves: no change
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == {}

    hass.states.async_set(SUN, BELOW)  # dusk during the boost's hold: boosted at once
    await hass.async_block_till_done()
    assert entry.runtime_data.lighting.sun_down() is True
    sent = last_levels(mqtt_mock)
    assert {mast: sent[mast] for mast in ("mast-2", "mast-3", "mast-4")} == dict.fromkeys(
        ("mast-2", "mast-3", "mast-4"), BOOST
    )
    assert sent["mast-1"] == BASE
    assert light(hass, "M1") == {"dark": True, "commanded_level": 30}


async def test_the_sun_integration_on_a_frozen_clock(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Sunset at the test location (San Diego, 22 Nov 2026) is about 16:45 local time."""
    freezer.move_to(local(15, 0))
    assert await async_setup_component(hass, "sun", {"sun": {}})
    await hass.async_block_till_done()
    assert hass.states.get(SUN).state == ABOVE
    await setup_lighting()
    assert light(hass, "M1") == {"dark": False, "commanded_level": 0}
    target = {"entity_id": state(hass, "M1", "light").entity_id}
    clear(mqtt_mock)
    await boost(hass, target)
    assert commands(mqtt_mock) == {}

    # To just after sunset: the sun entity changes on its own schedule, the masts follow.
    sunset = dt_util.parse_datetime(str(hass.states.get(SUN).attributes["next_setting"]))
    assert sunset is not None
    # (its position, and with it its state, is updated every few minutes)
    for minutes in range(1, 16):
        freezer.move_to(sunset + timedelta(minutes=minutes))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    assert hass.states.get(SUN).state == BELOW
    assert light(hass, "M5") == {"dark": True, "commanded_level": 30}
    assert last_levels(mqtt_mock)["mast-5"] == BASE
    clear(mqtt_mock)
    await boost(hass, target)
    assert last_levels(mqtt_mock) == {"mast-1": BOOST, "mast-2": BOOST}


async def test_a_light_sensor_makes_its_mast_dark_by_day_and_light_again(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lighting: SetupSite
) -> None:
    hass.states.async_set(SUN, ABOVE)
    await setup_lighting()
    clear(mqtt_mock)
    await report(hass, "mast-3", illuminance=2)  # a dark corner under trees
    assert light(hass, "M3") == {"dark": True, "commanded_level": 30}
    assert light(hass, "M2")["dark"] is False
    assert commands(mqtt_mock) == {"mast-3": [BASE]}

    clear(mqtt_mock)
    target = {"entity_id": state(hass, "M3", "light").entity_id}
    await boost(hass, target)
    assert commands(mqtt_mock) == {"mast-3": [BOOST]}  # its neighbours stand in daylight

    clear(mqtt_mock)
    await report(hass, "mast-3", illuminance=800)  # the clouds went
    assert light(hass, "M3") == {"dark": False, "commanded_level": 0}
    assert commands(mqtt_mock) == {"mast-3": [OFF_SLOWLY]}

    # The sun setting makes the others dark; the light sensor still rules its own mast.
    clear(mqtt_mock)
    hass.states.async_set(SUN, BELOW)
    await hass.async_block_till_done()
    assert light(hass, "M3") == {"dark": False, "commanded_level": 0}
    assert light(hass, "M2")["dark"] is True
    assert "mast-3" not in commands(mqtt_mock)
    await report(hass, "mast-3", illuminance=5)
    assert commands(mqtt_mock)["mast-3"] == [BOOST]  # dark again within the boost's hold


MASTS = [f"mast-{number}" for number in range(1, 8)]


def last_levels(mqtt_mock: MqttMockHAClient) -> dict[str, dict[str, object]]:
    """The last /set each luminaire got since the last `clear`."""
    return {device: sent[-1] for device, sent in commands(mqtt_mock).items()}


def local(hour: int, minute: int = 0) -> datetime:
    """A moment on 22 November 2026 in hass's time zone (US/Pacific in phcc)."""
    return dt_util.as_utc(
        datetime(2026, 11, 22, hour, minute, tzinfo=dt_util.get_default_time_zone())
    )
