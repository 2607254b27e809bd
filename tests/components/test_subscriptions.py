"""A site says it is loaded only once the broker has its subscriptions live (bounded wait)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
import logging
from typing import Any
from unittest.mock import Mock

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

from custom_components.city_ops.runtime import SUBSCRIBE_WAIT_S

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
