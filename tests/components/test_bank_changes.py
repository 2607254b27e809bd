"""One locker bank added, changed or removed touches that bank only: no site reload.

A bank removed while it lends something keeps its bookings with the site (Home Assistant has
no way to refuse deleting a subentry): a repair issue names them, and the bank added again
with the same controller gets them back, codes included.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
import json
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import HomeAssistant, State
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
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
from custom_components.city_ops.runtime import site_store_key

from .conftest import SetupSite, start_reconfigure, subentry, unsubscribed, untouched
from .lockers import UNLOCK, bank_device, call, commands, report
from .test_locker_flow import NEW_BANK, bank_form, north_form, reserve

LAKE = (
    "lock.locker_lake_compartment_1",
    "sensor.locker_lake_compartment_1_loan_state",
    "sensor.locker_lake_items_available",
)


def lake(hass: HomeAssistant) -> dict[str, State]:
    states = {entity_id: hass.states.get(entity_id) for entity_id in LAKE}
    assert all(states.values()), states
    return states  # type: ignore[return-value]


async def test_adding_a_bank_keeps_the_site_running(
    hass: HomeAssistant,
    mqtt_client_mock: MqttMockPahoClient,
    mqtt_mock: MqttMockHAClient,
    setup_lockers: SetupSite,
) -> None:
    entry = await setup_lockers()
    runtime = entry.runtime_data
    before = lake(hass)
    events = async_capture_events(hass, EVENT_STATE_CHANGED)
    mqtt_client_mock.unsubscribe.reset_mock()

    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "locker_bank"), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_BANK)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    assert entry.runtime_data is runtime
    untouched(hass, before, events)
    assert unsubscribed(mqtt_client_mock) == set()
    # The new bank is heard (its compartment states) and lends (its keypad opens a door).
    report(hass, "locker-south", 1, door="closed", locked=True, item_present=True)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.locker_south_items_available").state == "1"
    device_id = bank_device(hass, entry.entry_id, "Locker South")
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    mqtt_mock.async_publish.reset_mock()
    async_fire_mqtt_message(
        hass, "city_ops/locker-south/keypad", json.dumps({"code": booking["code"]})
    )
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == [("city_ops/locker-south/compartment/1/set", UNLOCK)]


async def test_changing_a_bank_keeps_its_bookings_and_drops_a_free_compartment(
    hass: HomeAssistant,
    mqtt_client_mock: MqttMockPahoClient,
    mqtt_mock: MqttMockHAClient,
    setup_lockers: SetupSite,
) -> None:
    entry = await setup_lockers()
    runtime = entry.runtime_data
    north = subentry(entry, "Locker North").subentry_id
    booking = await reserve(hass, entry, 1)
    before = lake(hass)
    events = async_capture_events(hass, EVENT_STATE_CHANGED)
    mqtt_client_mock.unsubscribe.reset_mock()

    result = await start_reconfigure(hass, entry, "locker_bank", "Locker North")
    changed = north_form(entry, name="Locker North Gate", device="locker-north-2")
    changed["compartments"] = [
        changed["compartments"][0],  # booked: kept
        {"number": 3.0, "item": "Hand cart", "item_type": "hand_cart"},
        {"number": 4.0, "item": "Umbrella", "item_type": "umbrella"},
    ]  # 2 goes
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], changed)
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()

    assert entry.runtime_data is runtime
    untouched(hass, before, events)
    assert unsubscribed(mqtt_client_mock) == {
        "city_ops/locker-north/compartment/+/state",
        "city_ops/locker-north/keypad",
    }
    bank = runtime.site.locker_banks[north]
    assert sorted(bank.compartments) == [1, 3, 4]
    assert bank.compartments[1].status.loan.reservation_id == booking["reservation_id"]
    registry = er.async_get(hass)
    numbers = {
        e.unique_id.removeprefix(f"{north}_").split("_")[0]
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.config_subentry_id == north and e.translation_key == "compartment"
    }
    assert numbers == {"1", "3", "4"}
    assert hass.states.get("lock.locker_north_compartment_2") is None
    assert hass.states.get("lock.locker_north_gate_compartment_4") is not None
    assert hass.states.get("sensor.locker_north_compartment_1_loan_state").state == "reserved"
    # The code still opens compartment 1, now from the new controller's keypad.
    mqtt_mock.async_publish.reset_mock()
    async_fire_mqtt_message(
        hass, "city_ops/locker-north-2/keypad", json.dumps({"code": booking["code"]})
    )
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == [("city_ops/locker-north-2/compartment/1/set", UNLOCK)]


async def test_a_bank_removed_while_lending_keeps_its_bookings_until_it_is_back(
    hass: HomeAssistant,
    mqtt_client_mock: MqttMockPahoClient,
    mqtt_mock: MqttMockHAClient,
    setup_lockers: SetupSite,
    hass_storage: dict[str, Any],
) -> None:
    entry = await setup_lockers()
    runtime = entry.runtime_data
    north = subentry(entry, "Locker North")
    booking = await reserve(hass, entry, 1)
    before = lake(hass)
    events = async_capture_events(hass, EVENT_STATE_CHANGED)
    mqtt_client_mock.unsubscribe.reset_mock()

    assert hass.config_entries.async_remove_subentry(entry, north.subentry_id)
    await hass.async_block_till_done()

    assert entry.runtime_data is runtime
    untouched(hass, before, events)
    assert unsubscribed(mqtt_client_mock) == {
        "city_ops/locker-north/compartment/+/state",
        "city_ops/locker-north/keypad",
    }
    assert hass.states.get("lock.locker_north_compartment_1") is None
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "locker_bank_removed_native_locker-north")
    assert issue is not None
    assert issue.translation_key == "locker_bank_removed_with_bookings"
    assert issue.translation_placeholders == {
        "bank": "Locker North",
        "count": "1",
        "compartments": "1 (Walker, reserved)",
        "device": "locker-north",
    }
    # Saved at once: a crash now does not lose who holds what.
    kept = hass_storage[site_store_key(entry.entry_id)]["data"]["removed_locker_banks"]
    assert (
        kept["native:locker-north"]["bank"]["compartments"]["1"]["loan"]["reservation_id"]
        == (booking["reservation_id"])
    )
    assert "code" not in json.dumps(kept).replace("_code", "")  # hashes only

    # Over a restart, then added again with the same controller: the booking is back.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "locker_bank"), context={"source": SOURCE_USER}
    )
    again = {**bank_form(north.data), "device": "locker-north"}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], again)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, "locker_bank_removed_native_locker-north")
        is None
    )
    assert hass.states.get("sensor.locker_north_compartment_1_loan_state").state == "reserved"
    mqtt_mock.async_publish.reset_mock()
    async_fire_mqtt_message(
        hass, "city_ops/locker-north/keypad", json.dumps({"code": booking["code"]})
    )
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == [("city_ops/locker-north/compartment/1/set", UNLOCK)]


async def test_a_free_bank_removed_leaves_nothing_behind(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lockers: SetupSite
) -> None:
    entry = await setup_lockers()
    lake_id = subentry(entry, "Locker Lake").subentry_id
    assert hass.config_entries.async_remove_subentry(entry, lake_id)
    await hass.async_block_till_done()
    assert lake_id not in entry.runtime_data.site.locker_banks
    assert entry.runtime_data.lending.kept == {}
    assert not [i for i in ir.async_get(hass).issues.values() if i.domain == DOMAIN]
    entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    assert not [e for e in entities if e.config_subentry_id == lake_id]


async def test_the_first_bank_of_a_site_keeps_its_deadlines(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_site: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A site of containers only: a bank added in place gets the lending tick (deadlines)."""
    entry = await setup_site()
    runtime = entry.runtime_data
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "locker_bank"), context={"source": SOURCE_USER}
    )
    await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_BANK)
    await hass.async_block_till_done()
    assert entry.runtime_data is runtime
    report(hass, "locker-south", 1, door="closed", locked=True, item_present=True)
    await hass.async_block_till_done()
    device_id = bank_device(hass, entry.entry_id, "Locker South")
    await call(hass, "reserve", device_id=device_id, compartment=1)
    assert hass.states.get("sensor.locker_south_compartment_1_loan_state").state == "reserved"
    # 90 minutes' pickup window: the reservation expires on the lending tick.
    freezer.tick(timedelta(minutes=91))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.locker_south_compartment_1_loan_state").state == "available"


async def test_a_call_waiting_for_a_bank_removed_meanwhile_is_refused(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lockers: SetupSite
) -> None:
    """A reservation queued behind another call on the bank must not book a bank that is gone."""
    entry = await setup_lockers()
    lending = entry.runtime_data.lending
    north = subentry(entry, "Locker North").subentry_id
    report(hass, "locker-north", 1, door="closed", locked=True, item_present=True)
    await hass.async_block_till_done()
    device_id = bank_device(hass, entry.entry_id, "Locker North")
    busy = lending._lock(north)
    await busy.acquire()  # another call on the bank is under way
    waiting = asyncio.create_task(call(hass, "reserve", device_id=device_id, compartment=1))
    for _ in range(3):
        await asyncio.sleep(0)
    assert not waiting.done()
    assert hass.config_entries.async_remove_subentry(entry, north)
    await hass.async_block_till_done()
    busy.release()
    with pytest.raises(ServiceValidationError) as refused:
        await waiting
    assert (refused.value.translation_domain, refused.value.translation_key) == (
        DOMAIN,
        "locker_bank_removed",
    )
    assert lending.kept == {}  # nothing was booked, so nothing is kept
