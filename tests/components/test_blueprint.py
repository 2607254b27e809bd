"""The full-bin alert blueprint, run by the real automation integration on a real site."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
import json
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.blueprint.models import DomainBlueprints
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
    async_fire_mqtt_message,
    async_fire_time_changed,
    async_mock_service,
)

from custom_components.city_ops.const import EVENT_CONTAINER_EMPTIED

from .conftest import SetupSite

BLUEPRINTS = Path(__file__).resolve().parents[2] / "blueprints"
BLUEPRINT = "city_ops/full_bin_alert.yaml"
TTN_TOPIC = "v3/city-bins@ttn/devices/bin-0042/up"
# Bin 0042: depth 1200 mm, sensor 100 mm above the full line: fill = 100 * (1 - (D - 100) / 1200)
DISTANCE = {4.2: 1250, 50: 700, 70: 460, 79: 352, 85: 280, 90: 220, 95: 160}
NOTIFY = [
    {
        "action": "test.notify",
        "data": {
            "container": "{{ container }}",
            "level": "{{ fill_level }}",
            "entity_id": "{{ entity_id }}",
            "waste_kind": "{{ waste_kind }}",
            "threshold": "{{ threshold }}",
        },
    }
]

type SetupAlert = Callable[..., Awaitable[list[ServiceCall]]]


@pytest.fixture(autouse=True)
def blueprint_folder() -> Iterator[None]:
    """Load blueprints from the repository's blueprints/ folder, as a user's config/ would."""
    with patch.object(
        DomainBlueprints,
        "blueprint_folder",
        new_callable=PropertyMock,
        side_effect=lambda: BLUEPRINTS / "automation",
    ):
        yield


def fill_level_entity(hass: HomeAssistant, device: str) -> str:
    """The fill level sensor of a container: its device and the translation key."""
    device_entry = next(d for d in dr.async_get(hass).devices if d.name == device)
    return next(
        entry.entity_id
        for entry in er.async_entries_for_device(er.async_get(hass), device_entry.id)
        if entry.translation_key == "fill_level"
    )


@pytest.fixture
async def setup_alert(hass: HomeAssistant, setup_site: SetupSite) -> SetupAlert:
    """Set up the site, then one automation from the blueprint for the given containers."""

    async def setup(*devices: str, **inputs: Any) -> list[ServiceCall]:
        await setup_site()
        calls = async_mock_service(hass, "test", "notify")
        containers = [fill_level_entity(hass, device) for device in devices or ("Bin 0042",)]
        assert await async_setup_component(
            hass,
            "automation",
            {
                "automation": {
                    "alias": "Full bins",
                    "use_blueprint": {
                        "path": BLUEPRINT,
                        "input": {"containers": containers, "notify": NOTIFY, **inputs},
                    },
                }
            },
        )
        await hass.async_block_till_done()
        automation = hass.states.get("automation.full_bins")
        assert automation is not None
        assert automation.state == STATE_ON
        return calls

    return setup


async def report(hass: HomeAssistant, level: float) -> None:
    """Bin 0042 reports the distance that means `level` %."""
    payload = {"uplink_message": {"decoded_payload": {"distance": DISTANCE[level]}}}
    async_fire_mqtt_message(hass, TTN_TOPIC, json.dumps(payload))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.bin_0042_fill_level").state == str(float(level))


async def wait(hass: HomeAssistant, freezer: FrozenDateTimeFactory, **delta: float) -> None:
    """Let time pass on the frozen clock and run what became due."""
    freezer.tick(timedelta(**delta))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def test_notifies_once_after_the_minimum_duration(
    hass: HomeAssistant, setup_alert: SetupAlert, freezer: FrozenDateTimeFactory
) -> None:
    calls = await setup_alert()  # blueprint defaults: above 80 % for 15 minutes
    await report(hass, 50)
    await report(hass, 85)
    await wait(hass, freezer, minutes=14)
    assert calls == []
    await wait(hass, freezer, minutes=1, seconds=1)
    assert len(calls) == 1
    assert calls[0].data == {
        "container": "Bin 0042",
        "level": 85.0,
        "entity_id": "sensor.bin_0042_fill_level",
        "waste_kind": "residual",
        "threshold": 80,
    }
    # It keeps filling; every reading stays above the threshold: no second notification.
    for level in (90, 95, 90, 95):
        await report(hass, level)
        await wait(hass, freezer, minutes=30)
    assert len(calls) == 1


async def test_level_in_the_message_is_the_level_when_it_is_sent(
    hass: HomeAssistant, setup_alert: SetupAlert, freezer: FrozenDateTimeFactory
) -> None:
    calls = await setup_alert(threshold=60, minimum_duration={"minutes": 30})
    await report(hass, 50)
    await report(hass, 70)
    await wait(hass, freezer, minutes=20)
    await report(hass, 85)
    await wait(hass, freezer, minutes=9)
    assert calls == []
    await wait(hass, freezer, minutes=1, seconds=1)
    assert len(calls) == 1
    assert calls[0].data["level"] == 85.0
    assert calls[0].data["threshold"] == 60


async def test_short_spike_does_not_notify(
    hass: HomeAssistant, setup_alert: SetupAlert, freezer: FrozenDateTimeFactory
) -> None:
    calls = await setup_alert()
    await report(hass, 50)
    await report(hass, 90)
    await wait(hass, freezer, minutes=10)
    await report(hass, 70)
    await wait(hass, freezer, hours=2)
    assert calls == []
    # The timer starts again at the next crossing rather than counting the spike.
    await report(hass, 85)
    await wait(hass, freezer, minutes=10)
    assert calls == []
    await wait(hass, freezer, minutes=5, seconds=1)
    assert len(calls) == 1


async def test_next_fill_cycle_notifies_again(
    hass: HomeAssistant, setup_alert: SetupAlert, freezer: FrozenDateTimeFactory
) -> None:
    calls = await setup_alert()
    emptied = async_capture_events(hass, EVENT_CONTAINER_EMPTIED)
    await report(hass, 50)
    await report(hass, 90)
    await wait(hass, freezer, minutes=16)
    assert len(calls) == 1

    await report(hass, 4.2)  # the collection crew was here
    assert len(emptied) == 1
    await wait(hass, freezer, hours=1)
    await report(hass, 50)
    await wait(hass, freezer, hours=1)
    await report(hass, 85)
    await wait(hass, freezer, minutes=14)
    assert len(calls) == 1
    await wait(hass, freezer, minutes=1, seconds=1)
    assert len(calls) == 2
    assert calls[1].data["container"] == "Bin 0042"
    assert calls[1].data["level"] == 85.0


async def test_offline_and_back_does_not_notify_again(
    hass: HomeAssistant, setup_alert: SetupAlert, freezer: FrozenDateTimeFactory
) -> None:
    calls = await setup_alert()
    await report(hass, 50)
    await report(hass, 85)
    await wait(hass, freezer, minutes=16)
    assert len(calls) == 1

    # Three missed reports of its hourly interval: the container becomes unavailable.
    await wait(hass, freezer, hours=3, minutes=2)
    assert hass.states.get("sensor.bin_0042_fill_level").state == STATE_UNAVAILABLE
    await report(hass, 90)
    await wait(hass, freezer, hours=1)
    assert len(calls) == 1


async def test_site_reload_does_not_notify_again(
    hass: HomeAssistant, setup_alert: SetupAlert, freezer: FrozenDateTimeFactory
) -> None:
    calls = await setup_alert()
    await report(hass, 50)
    await report(hass, 85)
    await wait(hass, freezer, minutes=16)
    assert len(calls) == 1

    entry = hass.config_entries.async_entries("city_ops")[0]
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.bin_0042_fill_level").state == "85.0"
    await wait(hass, freezer, hours=1)
    await report(hass, 90)
    await wait(hass, freezer, hours=1)
    assert len(calls) == 1


async def test_offline_while_crossing_is_not_reported_when_back(
    hass: HomeAssistant, setup_alert: SetupAlert, freezer: FrozenDateTimeFactory
) -> None:
    """The documented trade-off: coming back above the threshold is not a crossing."""
    calls = await setup_alert()
    await report(hass, 70)
    await wait(hass, freezer, hours=3, minutes=2)
    assert hass.states.get("sensor.bin_0042_fill_level").state == STATE_UNAVAILABLE
    await report(hass, 90)
    await wait(hass, freezer, hours=1)
    assert calls == []
    # The next genuine crossing is reported as usual.
    await report(hass, 70)
    await report(hass, 85)
    await wait(hass, freezer, minutes=16)
    assert len(calls) == 1


async def test_first_reading_of_a_new_sensor_above_threshold_notifies(
    hass: HomeAssistant, setup_alert: SetupAlert, freezer: FrozenDateTimeFactory
) -> None:
    calls = await setup_alert()
    await report(hass, 95)
    await wait(hass, freezer, minutes=16)
    assert len(calls) == 1
    assert calls[0].data["level"] == 95.0


async def test_containers_crossing_together_are_all_notified(
    hass: HomeAssistant, setup_alert: SetupAlert, freezer: FrozenDateTimeFactory
) -> None:
    calls = await setup_alert("Bin 0042", "Glass 7", "Tuya 1", "Native 1")
    await report(hass, 90)
    for topic, payload in (
        (
            "application/7/device/a84041000181c0de/event/up",
            {"deviceInfo": {"devEui": "a84041000181c0de"}, "object": {"Distance": "160 mm"}},
        ),
        ("zigbee2mqtt/tuya level 1", {"liquid_level_percent": 91}),
        ("city_ops/bin-n1/state", {"fill_percent": 60}),  # not full: no notification
    ):
        async_fire_mqtt_message(hass, topic, json.dumps(payload))
    await hass.async_block_till_done()
    await wait(hass, freezer, minutes=16)
    assert sorted((call.data["container"], call.data["level"]) for call in calls) == [
        ("Bin 0042", 90.0),
        ("Glass 7", 95.0),
        ("Tuya 1", 91.0),
    ]
    assert {call.data["waste_kind"] for call in calls} == {"residual", "glass"}


async def test_renamed_device_is_named_as_the_user_named_it(
    hass: HomeAssistant, setup_alert: SetupAlert, freezer: FrozenDateTimeFactory
) -> None:
    calls = await setup_alert()
    registry = dr.async_get(hass)
    device = next(d for d in registry.devices if d.name == "Bin 0042")
    registry.async_update_device(device.id, name_by_user="Bin at the pond")
    await report(hass, 85)
    await wait(hass, freezer, minutes=16)
    assert [call.data["container"] for call in calls] == ["Bin at the pond"]


async def test_turned_off_automation_does_not_notify(
    hass: HomeAssistant, setup_alert: SetupAlert, freezer: FrozenDateTimeFactory
) -> None:
    calls = await setup_alert()
    await hass.services.async_call(
        "automation", "turn_off", {"entity_id": "automation.full_bins"}, blocking=True
    )
    assert hass.states.get("automation.full_bins").state == STATE_OFF
    await report(hass, 50)
    await report(hass, 85)
    await wait(hass, freezer, minutes=16)
    assert calls == []
