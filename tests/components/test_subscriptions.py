"""A site says it is loaded only once the broker has its subscriptions live (bounded wait)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
import json
import logging
from typing import Any
from unittest.mock import Mock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockMqttReasonCode,
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient, MqttMockPahoClient

from custom_components.city_ops.const import DOMAIN, TOPIC_DEFAULTS_DATA
from custom_components.city_ops.runtime import SUBSCRIBE_WAIT_S
from custom_components.city_ops.sources import lorawan

from .conftest import container
from .test_masts import commands

SITE_TOPICS = {"v3/+/devices/+/up", "zigbee2mqtt/tuya level 1", "city_ops/bin-n1/state"}


OUR_ROOTS = ("v3/", "application/", "zigbee2mqtt/", "city_ops/")


async def turns(condition: Callable[[], bool], most: int = 100_000) -> bool:
    """Give the loop turns (timers never fire on the frozen clock) until `condition` holds."""
    for _ in range(most):
        if condition():
            return True
        await asyncio.sleep(0)
    return condition()


class HeldAcks:
    """The broker takes the site's SUBSCRIBEs but answers them only when told to."""

    def __init__(self, paho: MqttMockPahoClient) -> None:
        """Hold every SUBACK from now on."""
        self.paho = paho
        self.holding = True
        self.mids: list[int] = []
        self.topics: set[str] = set()  # the site's topics subscribed, held or not
        self._answer: Callable[..., Any] = paho.subscribe.side_effect
        paho.subscribe.side_effect = self._subscribe

    def _subscribe(self, topic_or_list: Any, qos: int = 0, **kwargs: Any) -> tuple[int, int]:
        pairs = topic_or_list if isinstance(topic_or_list, list) else [(topic_or_list, qos)]
        ours = {topic for topic, _ in pairs if topic.startswith(OUR_ROOTS)}
        self.topics |= ours
        if not ours or not self.holding:  # MQTT's own discovery topics are answered
            return self._answer(topic_or_list, qos, **kwargs)
        self.mids.append(100_000 + len(self.mids))  # clear of the mock's own message ids
        return (0, self.mids[-1])

    async def wait_held(self, setup: asyncio.Task[bool]) -> None:
        """Wait (on the loop) until a SUBSCRIBE of the site is held; the site must still wait."""
        await turns(lambda: bool(self.mids))
        await turns(setup.done, 200)  # gives the set-up every chance to end too early
        assert not setup.done()

    def release(self) -> None:
        """Answer what was held; later SUBSCRIBEs are answered at once again."""
        self.holding = False
        for mid in self.mids:
            self.paho.on_subscribe(Mock(), 0, mid, [MockMqttReasonCode()], None)


async def seconds_until_done(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, setup: asyncio.Task[bool]
) -> int:
    """Move the frozen clock a second at a time until the set-up ends; return the seconds."""
    seconds = 0
    while not setup.done() and seconds < 60:
        if await turns(setup.done, 200):  # the set-up reaches its wait at its own pace
            break
        freezer.tick(timedelta(seconds=1))
        seconds += 1
        async_fire_time_changed(hass)
    assert await setup
    return seconds


def warnings(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(r.levelno == logging.WARNING and text in r.getMessage() for r in caplog.records)


async def test_the_site_is_loaded_only_once_the_broker_acknowledged(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    mqtt_client_mock: MqttMockPahoClient,
    site_entry: MockConfigEntry,
) -> None:
    acks = HeldAcks(mqtt_client_mock)
    site_entry.add_to_hass(hass)
    setup = hass.async_create_task(hass.config_entries.async_setup(site_entry.entry_id))
    await acks.wait_held(setup)
    assert site_entry.state is ConfigEntryState.SETUP_IN_PROGRESS
    acks.release()
    assert await setup
    assert acks.topics >= SITE_TOPICS
    assert site_entry.state is ConfigEntryState.LOADED
    # The first message after "loaded" counts.
    async_fire_mqtt_message(hass, "city_ops/bin-n1/state", '{"fill_percent": 40}')
    await hass.async_block_till_done()
    assert hass.states.get("sensor.native_1_fill_level").state == "40.0"


async def test_a_broker_slow_to_acknowledge_delays_loading_by_a_bounded_time(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    mqtt_client_mock: MqttMockPahoClient,
    lighting_site: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Connected but silent: the site loads after the bound and its masts get their level."""
    acks = HeldAcks(mqtt_client_mock)
    lighting_site.add_to_hass(hass)
    setup = hass.async_create_task(hass.config_entries.async_setup(lighting_site.entry_id))
    await acks.wait_held(setup)
    assert lighting_site.state is ConfigEntryState.SETUP_IN_PROGRESS
    assert commands(mqtt_mock) == {}  # nobody would hear the lamps' answers yet
    assert await seconds_until_done(hass, freezer, setup) == SUBSCRIBE_WAIT_S
    await hass.async_block_till_done()
    assert lighting_site.state is ConfigEntryState.LOADED
    assert warnings(caplog, "has not confirmed its subscriptions after 10 s") == 1
    # MQTT gives up on each unanswered SUBSCRIBE after 10 s and reports it done: the lamps
    # start then (the wildcard topic went first, the masts' own topics in a second one).
    waited = 0
    while not commands(mqtt_mock) and waited < 60:
        freezer.tick(timedelta(seconds=1))
        waited += 1
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    assert waited <= SUBSCRIBE_WAIT_S + 1
    assert set(commands(mqtt_mock)) == {f"mast-{n}" for n in range(1, 8)}


def district(name: str, *devices: str) -> MockConfigEntry:
    """A site whose containers report through TTN on the default topic."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=name,
        data={"name": name, **TOPIC_DEFAULTS_DATA},
        options={"full_threshold": 80, "due_horizon_h": 24},
        subentries_data=[container(f"{name} {device}", "ttn", device) for device in devices],
    )


def ttn_uplink(device: str, distance: int) -> tuple[str, str]:
    return (
        f"v3/city-bins@ttn/devices/{device}/up",
        json.dumps({"uplink_message": {"decoded_payload": {"distance": distance}}}),
    )


async def test_districts_share_one_subscription_and_decode_only_their_devices(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, mqtt_client_mock: MqttMockPahoClient
) -> None:
    """Each uplink is decoded by the site that binds its device, not by every district."""
    north, south = district("North", "n-1", "n-2"), district("South", "s-1")
    for entry in (north, south):
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    wildcard = TOPIC_DEFAULTS_DATA["ttn_topic"]
    decoded: list[str] = []
    real_decode = lorawan.decode_ttn

    def counting_decode(topic: str, payload: bytes | str) -> Any:
        decoded.append(topic)
        return real_decode(topic, payload)

    def sent(*uplinks: tuple[str, str]) -> None:
        for topic, payload in uplinks:
            async_fire_mqtt_message(hass, topic, payload)

    stats = {entry.title: entry.runtime_data.stats for entry in (north, south)}
    with patch.object(lorawan, "decode_ttn", counting_decode):
        # The handlers were made at set-up: a reload makes them with the counting decoder.
        for entry in (north, south):
            assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        stats = {entry.title: entry.runtime_data.stats for entry in (north, south)}
        sent(ttn_uplink("n-1", 700), ttn_uplink("s-1", 460), ttn_uplink("n-2", 300))
        sent(ttn_uplink("stranger", 500), ("v3/city-bins@ttn/devices//up", "{}"))
        await hass.async_block_till_done()
    # One decode per uplink of a known device, and one per site for a topic without a device.
    assert sorted(decoded) == sorted(
        [ttn_uplink(d, 0)[0] for d in ("n-1", "s-1", "n-2")] + ["v3/city-bins@ttn/devices//up"] * 2
    )
    assert (stats["North"].applied, stats["South"].applied) == (2, 1)
    assert (stats["North"].received, stats["South"].received) == (4, 3)
    assert stats["North"].unknown_devices == stats["South"].unknown_devices == 1
    assert stats["North"].rejected["unknown_topic"] == stats["South"].rejected["unknown_topic"] == 1
    assert hass.states.get("sensor.south_s_1_fill_level").state == "70.0"

    # The subscription stays while a district uses it; the last one takes it away.
    assert await hass.config_entries.async_unload(north.entry_id)
    await hass.async_block_till_done()
    sent(ttn_uplink("s-1", 1000))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.south_s_1_fill_level").state == "25.0"
    unsubscribed_before = mqtt_client_mock.unsubscribe.call_count
    assert await hass.config_entries.async_unload(south.entry_id)
    await hass.async_block_till_done()
    unsubscribed = [
        topic
        for call in mqtt_client_mock.unsubscribe.call_args_list[unsubscribed_before:]
        for topic in (call.args[0] if isinstance(call.args[0], list) else [call.args[0]])
    ]
    assert wildcard in unsubscribed
