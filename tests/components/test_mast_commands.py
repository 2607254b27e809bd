"""Lamp commands are heard and confirmed: broker outages, refused publishes, lost commands.

The sun is set through `sun.sun` (below the horizon), as Home Assistant's sun integration does.
"""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.mqtt.const import MQTT_CONNECTION_STATE
from homeassistant.components.mqtt.models import DATA_MQTT
from homeassistant.const import STATE_OFF
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.dispatcher import async_dispatcher_send
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.const import DOMAIN
from custom_components.city_ops.runtime import SUBSCRIBE_WAIT_S

from .conftest import SetupSite
from .test_masts import BASE, BOOST, advance, boost, clear, commands, report, state

CORRIDOR = ("mast-2", "mast-3", "mast-4")


@pytest.fixture(autouse=True)
def night(hass: HomeAssistant) -> None:
    """The sun is down, as the sun integration would say."""
    hass.states.async_set("sun.sun", "below_horizon")


async def broker(hass: HomeAssistant, connected: bool) -> None:
    """Home Assistant's MQTT client loses (or regains) its broker, and says so."""
    hass.data[DATA_MQTT].client.connected = connected
    async_dispatcher_send(hass, MQTT_CONNECTION_STATE, connected)
    await hass.async_block_till_done()


def asked(mqtt_mock: MqttMockHAClient) -> list[str]:
    """Devices asked for their state (Zigbee2MQTT /get) since the last `clear`."""
    return [
        call.args[0].removeprefix("zigbee2mqtt/").removesuffix("/get")
        for call in mqtt_mock.async_publish.call_args_list
        if call.args[0].endswith("/get")
    ]


async def answer(hass: HomeAssistant, devices: tuple[str, ...], brightness: int) -> None:
    """The luminaires report the level they are at, as Zigbee2MQTT does after a /set."""
    for device in devices:
        await report(hass, device, state="ON", brightness=brightness)


async def test_a_boost_during_an_outage_is_sent_once_heard_again_and_confirmed(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    entry = await setup_lighting()
    lighting = entry.runtime_data.lighting
    await answer(hass, tuple(f"mast-{n}" for n in range(1, 8)), 76)
    clear(mqtt_mock)

    await broker(hass, False)
    target = {"entity_id": state(hass, "M3", "light").entity_id}
    assert (await boost(hass, target, hold=600))["boosted"] == ["M2", "M3", "M4"]
    with pytest.raises(HomeAssistantError) as raised:
        await hass.services.async_call("light", "turn_on", target, blocking=True)
    assert (raised.value.translation_domain, raised.value.translation_key) == (
        DOMAIN,
        "mast_unreachable",
    )
    await advance(hass, freezer, timedelta(seconds=61))  # a tick during the outage
    assert commands(mqtt_mock) == {}
    assert asked(mqtt_mock) == []  # a question could not leave either

    # Back: nothing is sent before the broker acknowledged the site's subscriptions again
    # (or after SUBSCRIBE_WAIT_S).
    await broker(hass, True)
    assert commands(mqtt_mock) == {}
    await advance(hass, freezer, timedelta(seconds=SUBSCRIBE_WAIT_S))
    assert commands(mqtt_mock) == {device: [BOOST] for device in CORRIDOR}
    assert lighting.mqtt_live

    await answer(hass, CORRIDOR, 254)
    for number in (2, 3, 4):
        assert lighting.site.masts[asset(entry, f"M{number}")].status.unconfirmed_since is None
        assert state(hass, f"M{number}", "light").attributes["brightness"] == 255
    clear(mqtt_mock)
    for _ in range(3):
        await advance(hass, freezer, timedelta(seconds=61))
    assert (commands(mqtt_mock), asked(mqtt_mock)) == ({}, [])  # confirmed: nothing to ask
    assert all(state(hass, f"M{n}", "lamp_fault").state == STATE_OFF for n in range(1, 7))


async def test_a_refused_publish_is_sent_again_on_the_next_tick(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    entry = await setup_lighting()
    await answer(hass, tuple(f"mast-{n}" for n in range(1, 8)), 76)
    mqtt_mock.async_publish.side_effect = HomeAssistantError("broker gone")
    target = {"entity_id": state(hass, "M3", "light").entity_id}
    await boost(hass, target)
    assert entry.runtime_data.lighting.command_errors == 3
    mqtt_mock.async_publish.side_effect = None
    clear(mqtt_mock)
    await advance(hass, freezer, timedelta(seconds=61))
    last = {device: sent[-1] for device, sent in commands(mqtt_mock).items()}
    assert last == dict.fromkeys(CORRIDOR, BOOST)


async def test_an_answer_at_the_old_level_means_the_command_was_lost(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Asked with /get, the luminaire answers at 30 %: it never got the boost; told again."""
    await setup_lighting()
    await answer(hass, tuple(f"mast-{n}" for n in range(1, 8)), 76)
    target = {"entity_id": state(hass, "M3", "light").entity_id}
    await boost(hass, target, hold=600)
    await answer(hass, ("mast-2", "mast-4"), 254)  # mast-3's answer is lost
    clear(mqtt_mock)
    await advance(hass, freezer, timedelta(seconds=61))
    assert asked(mqtt_mock) == ["mast-3"]
    clear(mqtt_mock)
    await answer(hass, ("mast-3",), 76)
    assert commands(mqtt_mock) == {"mast-3": [BOOST]}
    await answer(hass, ("mast-3",), 254)
    assert state(hass, "M3", "light").attributes["brightness"] == 255
    # An answer at the commanded level is not sent again.
    clear(mqtt_mock)
    await advance(hass, freezer, timedelta(seconds=61))
    assert commands(mqtt_mock) == {}
    assert asked(mqtt_mock) == []
    assert state(hass, "M3", "lamp_fault").state == STATE_OFF


async def test_restart_commands_only_once_heard_and_shows_what_the_luminaires_say(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A reload: no command before the subscriptions are live, every light as reported."""
    entry = await setup_lighting()
    await answer(hass, tuple(f"mast-{n}" for n in range(1, 8)), 76)
    clear(mqtt_mock)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    # The reload ends once the broker acknowledged the subscriptions (the mocked one at once;
    # held acknowledgements keep the lamps waiting: test_subscriptions).
    assert {device: sent[-1] for device, sent in commands(mqtt_mock).items()} == {
        f"mast-{n}": BASE for n in range(1, 8)
    }
    await answer(hass, tuple(f"mast-{n}" for n in range(1, 8)), 76)
    await advance(hass, freezer, timedelta(minutes=5))
    for number in range(1, 8):
        light = state(hass, f"M{number}", "light")
        assert light.attributes["brightness"] == round(76 * 100 / 254 * 255 / 100)
        assert state(hass, f"M{number}", "lamp_fault").state == STATE_OFF


def asset(entry: MockConfigEntry, name: str) -> str:
    return entry.runtime_data.site.mast_ids[name]
