"""Locker banks end to end inside Home Assistant: services, MQTT facts, keypad, events."""

from __future__ import annotations

from typing import Any

from homeassistant.core import Event, HomeAssistant, callback
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.const import DOMAIN

from .conftest import SetupSite
from .lockers import bank_device


async def test_reserve_keypad_collect_return(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lockers: SetupSite
) -> None:
    """Reserve, type the code, take the item, bring it back with the return code."""
    entry = await setup_lockers()
    events: list[Event[Any]] = []

    @callback
    def record(event: Event[Any]) -> None:
        if event.event_type.startswith("city_ops_locker_"):
            events.append(event)

    hass.bus.async_listen("*", record)
    device_id = bank_device(hass, entry.entry_id, "Locker North")
    for number in (1, 2, 3):
        async_fire_mqtt_message(
            hass,
            f"city_ops/locker-north/compartment/{number}/state",
            '{"door": "closed", "locked": true, "item_present": true}',
        )
    await hass.async_block_till_done()
    assert hass.states.get("sensor.locker_north_items_available").state == "3"
    response = await hass.services.async_call(
        DOMAIN,
        "reserve",
        {"device_id": device_id, "item_type": "hand_cart", "borrower": "b-1"},
        blocking=True,
        return_response=True,
    )
    assert response["compartment"] == 3
    code = response["code"]
    assert hass.states.get("sensor.locker_north_compartment_3_loan_state").state == "reserved"
    mqtt_mock.async_publish.reset_mock()
    async_fire_mqtt_message(hass, "city_ops/locker-north/keypad", f'{{"code": "{code}"}}')
    await hass.async_block_till_done()
    assert [call.args[:3] for call in mqtt_mock.async_publish.call_args_list] == [
        ("city_ops/locker-north/compartment/3/set", '{"lock":"UNLOCK"}', 1)
    ]
    async_fire_mqtt_message(
        hass, "city_ops/locker-north/compartment/3/state", '{"door": "open", "locked": false}'
    )
    async_fire_mqtt_message(
        hass, "city_ops/locker-north/compartment/3/state", '{"item_present": false}'
    )
    await hass.async_block_till_done()
    assert hass.states.get("sensor.locker_north_compartment_3_loan_state").state == "on_loan"
    kinds = [event.event_type for event in events]
    assert kinds == [
        "city_ops_locker_reserved",
        "city_ops_locker_released",
        "city_ops_locker_collected",
    ]
    for event in events:
        assert code not in repr(event.data)
