"""The locker entities: ids, states from the bank's facts, names, calendar, malformed input."""

from __future__ import annotations

from datetime import datetime, timedelta
import json
import logging
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.const import DOMAIN
from custom_components.city_ops.diagnostics import async_get_config_entry_diagnostics

from .conftest import SetupSite
from .lockers import bank_device, report

# What these tests check is shown by entities that are disabled by default, too.
pytestmark = pytest.mark.usefixtures("every_entity_enabled")

NORTH_COMPARTMENT_1 = {
    "lock": "lock.locker_north_compartment_1",
    "door": "binary_sensor.locker_north_compartment_1_door",
    "item": "binary_sensor.locker_north_compartment_1_item",
    "loan_state": "sensor.locker_north_compartment_1_loan_state",
}


def state_of(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


async def reserve(hass: HomeAssistant, device_id: str, **data: Any) -> dict[str, Any]:
    return await hass.services.async_call(  # type: ignore[return-value]
        DOMAIN, "reserve", {"device_id": device_id, **data}, blocking=True, return_response=True
    )


# -- ids, names, devices ---------------------------------------------------------------------


async def test_entities_of_a_bank(hass: HomeAssistant, setup_lockers: SetupSite) -> None:
    entry = await setup_lockers()
    registry = er.async_get(hass)
    device_id = bank_device(hass, entry.entry_id, "Locker North")
    device = dr.async_get(hass).async_get(device_id)
    assert device is not None
    assert device.model == "Locker bank"
    assert device.model_id == "native:locker-north"
    site_device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, entry.entry_id), entry.entry_id
    )
    assert site_device is not None
    assert device.via_device_id == site_device.id
    subentry_id = next(s for s, sub in entry.subentries.items() if sub.title == "Locker North")
    found = {
        (e.domain, e.translation_key): e for e in er.async_entries_for_device(registry, device_id)
    }
    expected_names = {
        "lock.locker_north_compartment_{n}": ("compartment", "Locker North Compartment {n}"),
        "binary_sensor.locker_north_compartment_{n}_door": (
            "door",
            "Locker North Compartment {n} door",
        ),
        "binary_sensor.locker_north_compartment_{n}_item": (
            "item",
            "Locker North Compartment {n} item",
        ),
        "sensor.locker_north_compartment_{n}_loan_state": (
            "loan_state",
            "Locker North Compartment {n} loan state",
        ),
    }
    for number in (1, 2, 3):
        for pattern, (key, name) in expected_names.items():
            entity_id = pattern.format(n=number)
            entity = registry.async_get(entity_id)
            assert entity is not None, entity_id
            assert entity.translation_key == key
            assert entity.device_id == device_id
            assert entity.config_subentry_id == subentry_id
            assert entity.unique_id == f"{subentry_id}_{number}_{key}"
            state = hass.states.get(entity_id)
            assert state.attributes["friendly_name"] == name.format(n=number)
    assert registry.async_get("lock.locker_north_compartment_4") is None
    bank_wide = {
        "sensor.locker_north_items_available": ("items_available", "Locker North Items available"),
        "calendar.locker_north_reservations": ("reservations", "Locker North Reservations"),
    }
    for entity_id, (key, name) in bank_wide.items():
        entity = registry.async_get(entity_id)
        assert entity.translation_key == key
        assert entity.device_id == device_id
        assert hass.states.get(entity_id).attributes["friendly_name"] == name
    # Three compartments with four entities each, plus the two of the bank.
    assert len(found) == 6
    assert len(er.async_entries_for_device(registry, device_id)) == 14
    assert (
        hass.states.get("binary_sensor.locker_north_compartment_1_door").attributes["device_class"]
        == "door"
    )
    loan_state = hass.states.get("sensor.locker_north_compartment_1_loan_state")
    assert loan_state.attributes["device_class"] == "enum"
    assert loan_state.attributes["options"] == [
        "available",
        "reserved",
        "on_loan",
        "overdue",
        "out_of_service",
    ]
    assert hass.states.get("lock.locker_lake_compartment_1") is not None


async def test_names_in_german(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, locker_site: MockConfigEntry
) -> None:
    hass.config.language = "de"
    locker_site.add_to_hass(hass)
    assert await hass.config_entries.async_setup(locker_site.entry_id)
    await hass.async_block_till_done()
    device_id = bank_device(hass, locker_site.entry_id, "Locker North")
    registry = er.async_get(hass)
    names = {
        (entity.domain, entity.unique_id.split("_", 1)[1]): hass.states.get(
            entity.entity_id
        ).attributes["friendly_name"]
        for entity in er.async_entries_for_device(registry, device_id)
    }
    assert names[("lock", "2_compartment")] == "Locker North Fach 2"
    assert names[("binary_sensor", "2_door")] == "Locker North Fach 2 Tür"
    assert names[("sensor", "2_loan_state")] == "Locker North Fach 2 Ausleihstatus"
    assert names[("sensor", "items_available")] == "Locker North Verfügbare Gegenstände"
    assert names[("calendar", "reservations")] == "Locker North Reservierungen"


# -- states from facts -----------------------------------------------------------------------


async def test_states_follow_the_facts(hass: HomeAssistant, setup_lockers: SetupSite) -> None:
    await setup_lockers()
    ids = NORTH_COMPARTMENT_1
    assert [state_of(hass, ids[k]) for k in ("lock", "door", "item")] == ["unknown"] * 3
    assert state_of(hass, ids["loan_state"]) == "available"
    report(hass, "locker-north", 1, door="closed", locked=True, item_present=True)
    await hass.async_block_till_done()
    assert [state_of(hass, ids[k]) for k in ("lock", "door", "item")] == ["locked", "off", "on"]
    report(hass, "locker-north", 1, locked=False)
    await hass.async_block_till_done()
    assert state_of(hass, ids["lock"]) == "unlocked"
    report(hass, "locker-north", 1, door="open")
    await hass.async_block_till_done()
    assert state_of(hass, ids["lock"]) == "open"
    assert state_of(hass, ids["door"]) == "on"
    report(hass, "locker-north", 1, item_present=False)
    await hass.async_block_till_done()
    assert state_of(hass, ids["item"]) == "off"
    report(hass, "locker-north", 1, door="closed", locked=True)
    await hass.async_block_till_done()
    assert [state_of(hass, ids[k]) for k in ("lock", "door", "item")] == ["locked", "off", "off"]
    # Other compartments and the other bank heard nothing.
    assert state_of(hass, "lock.locker_north_compartment_2") == "unknown"
    assert state_of(hass, "lock.locker_lake_compartment_1") == "unknown"


async def test_loan_state_and_items_available(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lockers: SetupSite
) -> None:
    entry = await setup_lockers()
    device_id = bank_device(hass, entry.entry_id, "Locker North")
    # Before the bank says what is inside, nothing counts as available.
    available = hass.states.get("sensor.locker_north_items_available")
    assert available.state == "0"
    assert available.attributes["by_item_type"] == {"hand_cart": 0, "walker": 0}
    for number in (1, 2, 3):
        report(hass, "locker-north", number, door="closed", locked=True, item_present=True)
    await hass.async_block_till_done()
    available = hass.states.get("sensor.locker_north_items_available")
    assert available.state == "3"
    assert available.attributes["by_item_type"] == {"hand_cart": 1, "walker": 2}
    assert available.attributes["latitude"] == 53.7010
    assert available.attributes["longitude"] == 10.0010
    assert available.attributes["state_class"] == "measurement"
    state = hass.states.get("sensor.locker_north_compartment_1_loan_state")
    assert state.state == "available"
    assert {
        k: v for k, v in state.attributes.items() if k in ("compartment", "item", "item_type")
    } == {
        "compartment": 1,
        "item": "Walker",
        "item_type": "walker",
    }
    assert "reservation_id" not in state.attributes

    booking = await reserve(hass, device_id, compartment=1, borrower="b-1", loan_period=60)
    state = hass.states.get("sensor.locker_north_compartment_1_loan_state")
    assert state.state == "reserved"
    # Who booked is for the caller and storage, not for every user who reads states.
    assert "reservation_id" not in state.attributes
    assert "borrower" not in state.attributes
    assert booking["reservation_id"] not in repr(state.attributes)
    assert state.attributes["pickup_until"] == booking["pickup_until"]
    assert state.attributes["loan_until"] is None
    for code in (booking["code"], booking["return_code"]):
        assert code not in repr(state.attributes)
    available = hass.states.get("sensor.locker_north_items_available")
    assert available.state == "2"
    assert available.attributes["by_item_type"] == {"hand_cart": 1, "walker": 1}

    async_fire_mqtt_message(hass, "city_ops/locker-north/keypad", booking["code"])
    await hass.async_block_till_done()
    report(hass, "locker-north", 1, door="open", locked=False)
    report(hass, "locker-north", 1, item_present=False)
    await hass.async_block_till_done()
    state = hass.states.get("sensor.locker_north_compartment_1_loan_state")
    assert state.state == "on_loan"
    loan_until = dt_util.parse_datetime(state.attributes["loan_until"])
    assert loan_until is not None
    assert loan_until - dt_util.utcnow() <= timedelta(minutes=60)
    # Collected: the return is the time that matters (a tile shows it), the pickup is history.
    assert "pickup_until" not in state.attributes
    for code in (booking["code"], booking["return_code"]):
        assert code not in repr(state.attributes)
    # Item missing from compartment 2: not available either.
    report(hass, "locker-north", 2, item_present=False)
    await hass.async_block_till_done()
    available = hass.states.get("sensor.locker_north_items_available")
    assert available.state == "1"
    assert available.attributes["by_item_type"] == {"hand_cart": 1, "walker": 0}


# -- calendar --------------------------------------------------------------------------------


def moment(text: str) -> datetime:
    parsed = dt_util.parse_datetime(text)
    assert parsed is not None, text
    return parsed


async def get_events(
    hass: HomeAssistant, entity_id: str, hours: float = 24
) -> list[dict[str, Any]]:
    now = dt_util.now()
    response = await hass.services.async_call(
        "calendar",
        "get_events",
        {
            "entity_id": entity_id,
            "start_date_time": (now - timedelta(hours=hours)).isoformat(),
            "end_date_time": (now + timedelta(hours=hours)).isoformat(),
        },
        blocking=True,
        return_response=True,
    )
    return response[entity_id]["events"]  # type: ignore[index,return-value]


async def test_calendar_lists_reservations_and_loans_never_codes(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lockers: SetupSite
) -> None:
    entry = await setup_lockers()
    device_id = bank_device(hass, entry.entry_id, "Locker North")
    calendar = "calendar.locker_north_reservations"
    assert await get_events(hass, calendar) == []
    assert state_of(hass, calendar) == "off"
    for number in (1, 2, 3):
        report(hass, "locker-north", number, door="closed", locked=True, item_present=True)
    await hass.async_block_till_done()
    cart = await reserve(hass, device_id, item_type="hand_cart", borrower="b-7", pickup_window=60)
    walker = await reserve(hass, device_id, compartment=1, borrower="b-8")
    codes = [cart["code"], cart["return_code"], walker["code"], walker["return_code"]]

    events = await get_events(hass, calendar)
    assert sorted(e["summary"] for e in events) == [
        "Reserved: Hand cart (Locker North, compartment 3)",
        "Reserved: Walker (Locker North, compartment 1)",
    ]
    cart_event = next(e for e in events if "Hand cart" in e["summary"])
    assert moment(cart_event["start"]) == moment(cart["pickup_from"])
    assert moment(cart_event["end"]) == moment(cart["pickup_until"])
    for event in events:  # every user reads calendars: nobody's reference is in them
        for reference in (cart["reservation_id"], walker["reservation_id"], "b-7", "b-8"):
            assert reference not in repr(event)
    assert cart_event["location"] == "Locker North"
    state = hass.states.get(calendar)
    assert state.state == "on"
    assert "Reserved:" in state.attributes["message"]

    # Collected: the reservation becomes a loan.
    async_fire_mqtt_message(hass, "city_ops/locker-north/keypad", cart["code"])
    await hass.async_block_till_done()
    report(hass, "locker-north", 3, door="open", locked=False)
    report(hass, "locker-north", 3, item_present=False)
    await hass.async_block_till_done()
    events = await get_events(hass, calendar)
    assert sorted(e["summary"] for e in events) == [
        "On loan: Hand cart (Locker North, compartment 3)",
        "Reserved: Walker (Locker North, compartment 1)",
    ]
    loan = next(e for e in events if e["summary"].startswith("On loan"))
    loan_until = hass.states.get("sensor.locker_north_compartment_3_loan_state").attributes[
        "loan_until"
    ]
    assert moment(loan["end"]) == moment(loan_until)
    # Cancelled reservations disappear.
    await hass.services.async_call(
        DOMAIN, "cancel", {"device_id": device_id, "compartment": 1}, blocking=True
    )
    events = await get_events(hass, calendar)
    assert [e["summary"] for e in events] == ["On loan: Hand cart (Locker North, compartment 3)"]
    text = json.dumps(events) + repr(hass.states.get(calendar).attributes)
    for code in codes:
        assert code not in text
    assert await get_events(hass, "calendar.locker_lake_reservations") == []


# -- malformed input -------------------------------------------------------------------------


async def test_malformed_messages_change_nothing_and_are_counted(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lockers: SetupSite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry = await setup_lockers()
    device_id = bank_device(hass, entry.entry_id, "Locker North")
    for number in (1, 2, 3):
        report(hass, "locker-north", number, door="closed", locked=True, item_present=True)
    await hass.async_block_till_done()
    booking = await reserve(hass, device_id, compartment=1)
    before = {
        state.entity_id: (state.state, dict(state.attributes))
        for state in hass.states.async_all()
        if "locker_" in state.entity_id
    }
    lending = entry.runtime_data.lending
    commands_before = lending.commands_sent
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    received_before = diagnostics["messages"]["received"]
    caplog.clear()

    base = "city_ops/locker-north"
    garbage: list[tuple[str, str | bytes]] = [
        (f"{base}/compartment/1/state", b"\xff\xfe\x00garbage"),  # not_json
        (f"{base}/compartment/1/state", "not json at all"),  # not_json
        (f"{base}/compartment/1/state", "[1, 2, 3]"),  # not_object
        (f"{base}/compartment/1/state", '"open"'),  # not_object
        (f"{base}/compartment/1/state", "{}"),  # no_measurement
        (
            f"{base}/compartment/1/state",
            json.dumps({"door": True, "locked": "yes", "item_present": 1}),
        ),  # no_measurement
        (f"{base}/compartment/1/state", json.dumps({"door": "ajar" * 10})),  # no_measurement
        (f"{base}/compartment/99/state", json.dumps({"door": "open"})),  # unknown_topic
        (f"{base}/compartment/01/state", json.dumps({"door": "open"})),  # unknown_topic
        (f"{base}/compartment/x/state", json.dumps({"door": "open"})),  # unknown_topic
        (f"{base}/compartment/9/state", json.dumps({"door": "open"})),  # unknown_compartment
        (
            f"{base}/compartment/1/state",
            json.dumps({"door": "open", "pad": "x" * 70_000}),
        ),  # too_large
        (f"{base}/keypad", "12ab56"),  # bad_code
        (f"{base}/keypad", json.dumps({"code": 123456})),  # bad_code
        (f"{base}/keypad", json.dumps({"code": "12"})),  # bad_code
        (f"{base}/keypad", json.dumps({"pin": booking["code"]})),  # bad_code
        (f"{base}/keypad", "1" * 300),  # too_large
        (f"{base}/keypad", "{not json"),  # not_json
    ]
    for topic, payload in garbage:
        async_fire_mqtt_message(hass, topic, payload)
    # A bank nobody configured: not subscribed, never seen.
    async_fire_mqtt_message(hass, "city_ops/locker-south/compartment/1/state", '{"door": "open"}')
    async_fire_mqtt_message(hass, "city_ops/locker-south/keypad", booking["code"])
    await hass.async_block_till_done()

    after = {
        state.entity_id: (state.state, dict(state.attributes))
        for state in hass.states.async_all()
        if "locker_" in state.entity_id
    }
    assert after == before
    assert lending.commands_sent == commands_before
    assert (lending.codes_refused, lending.codes_accepted) == (0, 0)
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    messages = diagnostics["messages"]
    assert messages["received"] - received_before == len(garbage)
    assert messages["rejected"] == {
        "not_json": 3,
        "not_object": 2,
        "no_measurement": 3,
        "unknown_topic": 3,
        "unknown_compartment": 1,
        "too_large": 2,
        "bad_code": 4,
    }
    assert messages["rejected_total"] == len(garbage)
    assert messages["internal_errors"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Neither our log lines nor the diagnostics show a code (HA's MQTT debug log may).
    ours = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith("custom_components.city_ops")
    )
    assert "Ignoring native message on city_ops/locker-north/keypad" in ours
    for code in (booking["code"], booking["return_code"]):
        assert code not in ours
        assert code not in repr(diagnostics)
    north = diagnostics["lockers"]["banks"]["Locker North"]
    assert north["compartments"]["1"]["state"] == "reserved"
    assert north["compartments"]["1"]["loan"]["pickup_hash"] == "**REDACTED**"
    assert north["compartments"]["1"]["loan"]["return_hash"] == "**REDACTED**"
    assert north["keypad"]["failures"] == 0


async def test_unusable_fields_are_dropped_and_the_rest_kept(
    hass: HomeAssistant, setup_lockers: SetupSite
) -> None:
    entry = await setup_lockers()
    report(hass, "locker-north", 2, door="open", locked="maybe", item_present="yes")
    await hass.async_block_till_done()
    assert state_of(hass, "binary_sensor.locker_north_compartment_2_door") == "on"
    assert state_of(hass, "binary_sensor.locker_north_compartment_2_item") == "unknown"
    assert state_of(hass, "lock.locker_north_compartment_2") == "open"
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["messages"]["rejected_fields"] == {"locked": 1, "item_present": 1}
    assert diagnostics["messages"]["applied"] == 1
