"""Containers fed through Home Assistant's MQTT integration, one test per behaviour."""

from __future__ import annotations

from datetime import timedelta
import json
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_mqtt_message,
    async_fire_time_changed,
)

from custom_components.city_ops.binary_sensor import CONTAINER_BINARY_SENSORS
from custom_components.city_ops.const import EVENT_CONTAINER_EMPTIED
from custom_components.city_ops.sensor import CONTAINER_SENSORS
from custom_components.city_ops.waste import SHOWN_BY_READINGS

from .conftest import SetupSite

# What these tests check is shown by entities that are disabled by default, too.
pytestmark = pytest.mark.usefixtures("every_entity_enabled")

TTN_TOPIC = "v3/city-bins@ttn/devices/bin-0042/up"


def ttn(**decoded: Any) -> str:
    return json.dumps({"uplink_message": {"decoded_payload": decoded}})


def entity_ids(hass: HomeAssistant, device: str, key: str) -> list[str]:
    """Find entities the way dashboards and outside tests do: device + translation key."""
    device_entry = next(d for d in dr.async_get(hass).devices if d.name == device)
    registry = er.async_get(hass)
    return [
        e.entity_id
        for e in er.async_entries_for_device(registry, device_entry.id)
        if e.translation_key == key
    ]


def entity_id(hass: HomeAssistant, device: str, key: str) -> str:
    """The one entity of a device with a translation key."""
    (found,) = entity_ids(hass, device, key)
    return found


def state(hass: HomeAssistant, device: str, key: str) -> str:
    found = hass.states.get(entity_id(hass, device, key))
    assert found is not None
    return found.state


async def test_ttn_uplink_gives_fill_level_and_battery(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    await setup_site()
    assert state(hass, "Bin 0042", "fill_level") == STATE_UNKNOWN
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=700, battery=92))
    await hass.async_block_till_done()
    assert state(hass, "Bin 0042", "fill_level") == "50.0"
    assert state(hass, "Bin 0042", "battery") == "92"
    assert state(hass, "Bin 0042", "fill_state") == "ok"
    attributes = hass.states.get(entity_id(hass, "Bin 0042", "fill_level")).attributes
    assert attributes["latitude"] == pytest.approx(53.7001)
    assert attributes["unit_of_measurement"] == "%"
    assert attributes["state_class"] == "measurement"


@pytest.mark.parametrize(
    ("topic", "payload", "device", "level"),
    [
        (
            "application/7/device/A84041000181C0DE/event/up",
            {"deviceInfo": {"devEui": "a84041000181c0de"}, "object": {"Distance": "460 mm"}},
            "Glass 7",
            "70.0",
        ),
        ("zigbee2mqtt/tuya level 1", {"liquid_level_percent": 63, "battery": 80}, "Tuya 1", "63.0"),
        ("city_ops/bin-n1/state", {"fill_percent": 12.34, "temperature": 21.5}, "Native 1", "12.3"),
    ],
)
async def test_every_source_feeds_its_container(
    hass: HomeAssistant,
    setup_site: SetupSite,
    topic: str,
    payload: dict[str, Any],
    device: str,
    level: str,
) -> None:
    await setup_site()
    async_fire_mqtt_message(hass, topic, json.dumps(payload))
    await hass.async_block_till_done()
    assert state(hass, device, "fill_level") == level
    others = {"Bin 0042", "Glass 7", "Tuya 1", "Native 1"} - {device}
    for other in others:
        assert state(hass, other, "fill_level") == STATE_UNKNOWN


async def test_emptying_sets_last_emptied_and_fires_event(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    await setup_site()
    events = async_capture_events(hass, EVENT_CONTAINER_EMPTIED)
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=700, battery=92))
    await hass.async_block_till_done()
    # Never emptied: no entity for it yet (it comes with the first emptying).
    assert entity_ids(hass, "Bin 0042", "last_emptied") == []
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=1250))
    await hass.async_block_till_done()
    assert state(hass, "Bin 0042", "fill_level") == "4.2"
    assert state(hass, "Bin 0042", "last_emptied") not in (STATE_UNKNOWN, STATE_UNAVAILABLE)
    assert state(hass, "Bin 0042", "fill_state") == "empty"
    assert len(events) == 1
    assert events[0].data["before"] == 50.0
    assert events[0].data["after"] == 4.2
    assert events[0].data["name"] == "Bin 0042"


async def test_fire_alarm_and_tilt(hass: HomeAssistant, setup_site: SetupSite) -> None:
    await setup_site()
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=700, temperature=20, position="normal"))
    await hass.async_block_till_done()
    assert state(hass, "Bin 0042", "fire_alarm") == "off"
    assert state(hass, "Bin 0042", "tilt") == "off"
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(temperature=72.5, position="tilt"))
    await hass.async_block_till_done()
    assert state(hass, "Bin 0042", "fire_alarm") == "on"
    assert state(hass, "Bin 0042", "tilt") == "on"
    assert state(hass, "Bin 0042", "temperature") == "72.5"
    # A reading without fill data keeps the fill level.
    assert state(hass, "Bin 0042", "fill_level") == "50.0"


async def test_offline_after_three_missed_reports_and_back(
    hass: HomeAssistant,
    setup_site: SetupSite,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await setup_site()
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=700, battery=87))
    await hass.async_block_till_done()
    freezer.tick(timedelta(hours=2, minutes=59))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert state(hass, "Bin 0042", "fill_level") == "50.0"
    for _ in range(3):
        freezer.tick(timedelta(minutes=1))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    assert state(hass, "Bin 0042", "fill_level") == STATE_UNAVAILABLE
    assert state(hass, "Bin 0042", "battery") == STATE_UNAVAILABLE
    assert caplog.text.count("Bin 0042 has not reported") == 1
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=650))
    await hass.async_block_till_done()
    assert state(hass, "Bin 0042", "fill_level") == "54.2"
    assert caplog.text.count("Bin 0042 reports again") == 1


async def test_fill_rate_predicts_full(
    hass: HomeAssistant, setup_site: SetupSite, freezer: FrozenDateTimeFactory
) -> None:
    await setup_site()
    for hour in range(4):
        # 10 points per hour: 40, 50, 60, 70 -> full (80) one hour after the last reading.
        distance = 100 + 1200 * (1 - (40 + 10 * hour) / 100)
        async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=distance))
        await hass.async_block_till_done()
        if hour < 3:
            freezer.tick(timedelta(hours=1))
    predicted = hass.states.get(entity_id(hass, "Bin 0042", "predicted_full"))
    assert predicted is not None
    expected = dt_util.utcnow() + timedelta(hours=1)
    got = dt_util.parse_datetime(predicted.state)
    assert got is not None
    assert abs((got - expected).total_seconds()) < 60


async def test_state_survives_a_restart(hass: HomeAssistant, setup_site: SetupSite) -> None:
    entry = await setup_site()
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=700, battery=92))
    await hass.async_block_till_done()
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=1250))
    await hass.async_block_till_done()
    emptied = state(hass, "Bin 0042", "last_emptied")
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert state(hass, "Bin 0042", "fill_level") == "4.2"
    assert state(hass, "Bin 0042", "battery") == "92"
    assert state(hass, "Bin 0042", "last_emptied") == emptied


async def test_unknown_devices_and_bad_fields_are_counted(
    hass: HomeAssistant, setup_site: SetupSite, caplog: pytest.LogCaptureFixture
) -> None:
    entry: MockConfigEntry = await setup_site()
    async_fire_mqtt_message(hass, "v3/other@ttn/devices/stranger/up", ttn(distance=500))
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=700, battery=400))
    await hass.async_block_till_done()
    stats = entry.runtime_data.stats
    assert stats.unknown_devices == 1
    assert stats.rejected_fields["battery"] == 1
    assert state(hass, "Bin 0042", "fill_level") == "50.0"
    # An unusable battery value is no report of a battery: no entity for it (yet).
    assert not any(
        e.translation_key == "battery"
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    )
    assert "unusable values for battery" in caplog.text


async def test_collection_route_and_containers_due(
    hass: HomeAssistant, setup_site: SetupSite, freezer: FrozenDateTimeFactory
) -> None:
    entry = await setup_site()
    route = entity_id(hass, "Stadtpark", "collection_route")
    due = entity_id(hass, "Stadtpark", "containers_due")
    assert hass.states.get(route).state == "0"
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=160))  # 95 %
    async_fire_mqtt_message(
        hass, "zigbee2mqtt/tuya level 1", json.dumps({"liquid_level_percent": 85})
    )
    async_fire_mqtt_message(hass, "city_ops/bin-n1/state", json.dumps({"fill_percent": 20}))
    await hass.async_block_till_done()
    freezer.tick(timedelta(seconds=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(due).state == "2"
    assert hass.states.get(due).attributes["containers"] == ["Bin 0042", "Tuya 1"]
    assert hass.states.get(route).state == "2"
    plan = await hass.services.async_call(
        "city_ops",
        "plan_collection",
        {"config_entry_id": entry.entry_id},
        blocking=True,
        return_response=True,
    )
    assert [stop["name"] for stop in plan["stops"]] in (
        ["Bin 0042", "Tuya 1"],
        ["Tuya 1", "Bin 0042"],
    )
    items = await hass.services.async_call(
        "todo", "get_items", {"entity_id": route}, blocking=True, return_response=True
    )
    assert [item["summary"] for item in items[route]["items"]] == [
        stop["name"] for stop in plan["stops"]
    ]
    # Emptying a due container completes its item.
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=1250))
    await hass.async_block_till_done()
    freezer.tick(timedelta(seconds=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(route).state == "1"
    items = await hass.services.async_call(
        "todo",
        "get_items",
        {"entity_id": route, "status": ["completed"]},
        blocking=True,
        return_response=True,
    )
    assert [item["summary"] for item in items[route]["items"]] == ["Bin 0042"]


async def test_a_reading_refreshes_only_the_entities_showing_what_it_carries(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    runtime = entry.runtime_data
    asset_id = next(a for a, c in runtime.site.containers.items() if c.spec.name == "Bin 0042")
    seen: list[str] = []
    for shows in ("fill_level", "predicted_full", "battery", "fire_alarm", "tilt", ""):
        runtime.async_add_listener(asset_id, lambda shows=shows: seen.append(shows), shows)

    async def refreshed(**decoded: Any) -> list[str]:
        seen.clear()
        async_fire_mqtt_message(hass, TTN_TOPIC, ttn(**decoded))
        await hass.async_block_till_done()
        return sorted(seen)

    assert await refreshed(battery=80) == ["", "battery"]
    assert await refreshed(distance=700) == ["", "fill_level", "predicted_full"]
    assert await refreshed(temperature=21, position="tilt") == ["", "fire_alarm", "tilt"]
    assert state(hass, "Bin 0042", "tilt") == "on"


def test_every_container_entity_is_refreshed_by_the_readings_that_move_it() -> None:
    keys = {d.key for d in (*CONTAINER_SENSORS, *CONTAINER_BINARY_SENSORS)}
    assert keys <= SHOWN_BY_READINGS


async def test_a_listener_removing_itself_does_not_hide_the_next_one(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    runtime = entry.runtime_data
    asset_id = next(a for a, c in runtime.site.containers.items() if c.spec.name == "Bin 0042")
    seen: list[str] = []

    def once() -> None:
        seen.append("once")
        remove_once()

    remove_once = runtime.async_add_listener(asset_id, once, "battery")
    runtime.async_add_listener(asset_id, lambda: seen.append("after"), "battery")
    for battery in (80, 79):
        async_fire_mqtt_message(hass, TTN_TOPIC, ttn(battery=battery))
        await hass.async_block_till_done()
    assert seen == ["once", "after", "after"]
