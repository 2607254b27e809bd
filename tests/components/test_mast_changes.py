"""One mast added, changed or removed touches that mast (and its neighbours' corridors) only.

The proof that the site did not reload: its runtime is the same object afterwards, the other
masts' entities kept their state objects (a reload takes them away and back) and no other
mast's topic was unsubscribed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
import json
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import EVENT_STATE_CHANGED, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant, State
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import (
    MqttMockHAClient,
    MqttMockPahoClient,
)

from custom_components.city_ops.const import DOMAIN
from custom_components.city_ops.runtime import masts_store_key

from .conftest import SetupSite, sent_to, subentry, unsubscribed, untouched

NEW_MAST = {
    "name": "M8",
    "latitude": 53.7008,
    "longitude": 10.0008,
    "path": "Hauptweg",
    "rated_power_w": 60,
    "neighbours": ["M6"],
    "source_kind": "zigbee2mqtt",
    "device": "mast-8",
}


@pytest.fixture(autouse=True)
def evening(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> Iterator[None]:
    """Dark at 20:00 local, before the night window."""
    zone = dt_util.get_default_time_zone()
    freezer.move_to(dt_util.as_utc(datetime(2026, 11, 22, 20, 0, tzinfo=zone)))
    with patch("custom_components.city_ops.street_lighting.is_up", return_value=False):
        yield


def lights(hass: HomeAssistant, *names: str) -> dict[str, State]:
    states = {f"light.{name.lower()}": hass.states.get(f"light.{name.lower()}") for name in names}
    assert all(states.values()), states
    return states  # type: ignore[return-value]


async def boost(hass: HomeAssistant, entity_id: str) -> list[str]:
    response = await hass.services.async_call(
        DOMAIN, "boost", {"entity_id": entity_id}, blocking=True, return_response=True
    )
    await hass.async_block_till_done()
    assert response is not None
    return list(response["boosted"])  # type: ignore[arg-type]


async def test_adding_a_mast_keeps_the_site_running_and_joins_its_path(
    hass: HomeAssistant,
    mqtt_client_mock: MqttMockPahoClient,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
) -> None:
    entry = await setup_lighting()
    runtime = entry.runtime_data
    before = lights(hass, "M1", "M2", "M3", "M4", "M5", "M6", "M7")
    events = async_capture_events(hass, EVENT_STATE_CHANGED)
    mqtt_client_mock.unsubscribe.reset_mock()
    mqtt_mock.async_publish.reset_mock()

    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "mast"), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_MAST)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    assert entry.runtime_data is runtime
    untouched(hass, before, events)
    assert unsubscribed(mqtt_client_mock) == set()
    # Only the new mast was told a level: 30 % of the site's profile.
    assert {
        call.args[0] for call in mqtt_mock.async_publish.call_args_list if "/set" in call.args[0]
    } == {"zigbee2mqtt/mast-8/set"}
    assert sent_to(mqtt_mock, "mast-8") == [{"state": "ON", "brightness": 76, "transition": 1.0}]
    # Its luminaire is heard, and Zigbee2MQTT's availability reaches it.
    async_fire_mqtt_message(
        hass, "zigbee2mqtt/mast-8", json.dumps({"state": "ON", "brightness": 254})
    )
    await hass.async_block_till_done()
    assert hass.states.get("light.m8").attributes["brightness"] == 255
    async_fire_mqtt_message(hass, "zigbee2mqtt/mast-8/availability", '{"state": "offline"}')
    await hass.async_block_till_done()
    assert hass.states.get("light.m8").state == STATE_UNAVAILABLE
    # M6's corridor now reaches the new mast: the neighbour is declared on one side only.
    assert await boost(hass, "light.m6") == ["M5", "M6", "M8"]


async def test_changing_a_mast_moves_its_subscription_and_keeps_its_state(
    hass: HomeAssistant,
    mqtt_client_mock: MqttMockPahoClient,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    entry = await setup_lighting()
    runtime = entry.runtime_data
    m7 = subentry(entry, "M7").subentry_id
    for _ in range(3):  # some energy counted
        freezer.tick(timedelta(minutes=1))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    energy = runtime.site.masts[m7].status.energy_kwh
    assert energy > 0
    before = lights(hass, "M1", "M2", "M3", "M4", "M5", "M6")
    events = async_capture_events(hass, EVENT_STATE_CHANGED)
    mqtt_client_mock.unsubscribe.reset_mock()

    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "mast"), context={"source": SOURCE_RECONFIGURE, "subentry_id": m7}
    )
    changed = {
        "name": "M7 Pavillon",
        "latitude": 53.71,
        "longitude": 10.01,
        "path": "Seeweg",
        "rated_power_w": 40,
        "neighbours": [],
        "source_kind": "zigbee2mqtt",
        "device": "mast-7b",
        "motion_device": "pir-7b",
    }
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], changed)
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()

    assert entry.runtime_data is runtime
    untouched(hass, before, events)
    # The old luminaire's and the old PIR's topics are given up, nobody else's.
    assert unsubscribed(mqtt_client_mock) == {"zigbee2mqtt/mast-7", "zigbee2mqtt/pir-7"}
    mast = runtime.site.masts[m7]
    assert mast.status.energy_kwh == energy  # its state stays with it
    state = hass.states.get("light.m7")  # same entity, renamed with its device
    assert state is not None
    assert state.name == "M7 Pavillon"
    assert (state.attributes["path"], state.attributes["latitude"]) == ("Seeweg", 53.71)
    device = dr.async_get(hass).async_get_device_by_identifier((DOMAIN, m7), entry.entry_id)
    assert device is not None
    assert (device.name, device.model, device.model_id) == (
        "M7 Pavillon",
        "Lighting mast (Seeweg)",
        "zigbee2mqtt:mast-7b",
    )
    received = runtime.stats.received
    async_fire_mqtt_message(hass, "zigbee2mqtt/pir-7", json.dumps({"occupancy": True}))
    await hass.async_block_till_done()
    assert runtime.stats.received == received
    async_fire_mqtt_message(hass, "zigbee2mqtt/pir-7b", json.dumps({"occupancy": True}))
    await hass.async_block_till_done()
    assert mast.status.motion is True


async def test_a_path_change_only_moves_the_corridor(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lighting: SetupSite
) -> None:
    """M4 no longer names M3: the chain splits in two, and nothing else is rewritten."""
    entry = await setup_lighting()
    m4 = subentry(entry, "M4")
    before = lights(hass, "M1", "M2", "M3", "M5", "M6", "M7")
    events = async_capture_events(hass, EVENT_STATE_CHANGED)
    hass.config_entries.async_update_subentry(entry, m4, data={**m4.data, "neighbours": []})
    await hass.async_block_till_done()
    untouched(hass, before, events)
    assert await boost(hass, "light.m3") == ["M2", "M3"]
    assert await boost(hass, "light.m4") == ["M4", "M5"]


async def test_removing_a_mast_cleans_up_and_splits_its_path(
    hass: HomeAssistant,
    mqtt_client_mock: MqttMockPahoClient,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    hass_storage: dict[str, Any],
) -> None:
    entry = await setup_lighting()
    runtime = entry.runtime_data
    m3 = subentry(entry, "M3").subentry_id
    ir.async_create_issue(
        hass,
        DOMAIN,
        f"lamp_fault_{m3}",
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="lamp_fault_lamp_failure",
        translation_placeholders={"mast": "M3", "since": "2026-11-21 20:00"},
    )
    before = lights(hass, "M1", "M2", "M4", "M5", "M6", "M7")
    events = async_capture_events(hass, EVENT_STATE_CHANGED)
    mqtt_client_mock.unsubscribe.reset_mock()

    assert hass.config_entries.async_remove_subentry(entry, m3)
    await hass.async_block_till_done()

    assert entry.runtime_data is runtime
    untouched(hass, before, events)
    assert unsubscribed(mqtt_client_mock) == {"zigbee2mqtt/mast-3"}
    assert m3 not in runtime.site.masts
    assert hass.states.get("light.m3") is None
    assert not [
        e
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if e.config_subentry_id == m3
    ]
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"lamp_fault_{m3}") is None
    # Its neighbours no longer light through it.
    assert await boost(hass, "light.m2") == ["M1", "M2"]
    assert await boost(hass, "light.m4") == ["M4", "M5"]
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert m3 not in hass_storage[masts_store_key(entry.entry_id)]["data"]["masts"]


async def test_a_mast_added_in_place_keeps_its_state_over_a_restart(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    entry = await setup_lighting()
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "mast"), context={"source": SOURCE_USER}
    )
    await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_MAST)
    await hass.async_block_till_done()
    m8 = subentry(entry, "M8").subentry_id
    for _ in range(10):
        freezer.tick(timedelta(minutes=1))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    energy = entry.runtime_data.site.masts[m8].status.energy_kwh
    assert energy > 0
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.runtime_data.site.masts[m8].status.energy_kwh == pytest.approx(energy)


async def test_the_first_mast_of_a_site_starts_its_lighting_in_place(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_site: SetupSite
) -> None:
    """A site of containers only: its lighting sensors come with the first mast, no reload."""
    entry = await setup_site()
    runtime = entry.runtime_data
    before = {e: hass.states.get(e) for e in ("sensor.bin_0042_fill_level",)}
    events = async_capture_events(hass, EVENT_STATE_CHANGED)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "mast"), context={"source": SOURCE_USER}
    )
    first = {**NEW_MAST, "name": "M1", "device": "mast-1", "neighbours": []}
    await hass.config_entries.subentries.async_configure(result["flow_id"], first)
    await hass.async_block_till_done()
    # The lighting starts once the broker acknowledged the new topics.
    for _ in range(3):
        await asyncio.sleep(0)
        await hass.async_block_till_done()
    assert entry.runtime_data is runtime
    assert all(hass.states.get(e) is state for e, state in before.items())
    assert not [e for e in events if e.data["entity_id"] in before]
    assert hass.states.get("sensor.stadtpark_lighting_energy") is not None
    assert sent_to(mqtt_mock, "mast-1") == [{"state": "ON", "brightness": 76, "transition": 1.0}]
