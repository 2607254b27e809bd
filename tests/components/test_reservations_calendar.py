"""The reservations calendar: the bank named, returned loans called so, what is to come first."""

from __future__ import annotations

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from .test_locker_entities import get_events
from .test_locker_services import NORTH, call, collect, north  # noqa: F401  (fixture)

CALENDAR = "calendar.locker_north_reservations"


async def test_a_returned_loan_is_titled_returned_and_comes_after_what_is_to_come(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    north: tuple[MockConfigEntry, str],  # noqa: F811
    freezer: FrozenDateTimeFactory,
) -> None:
    _, device_id = north
    cart = await call(hass, "reserve", device_id=device_id, compartment=3)
    await collect(hass, mqtt_mock, NORTH, 3, cart["code"])
    freezer.tick(600)
    await call(hass, "mark_returned", device_id=device_id, compartment=3)
    freezer.tick(600)
    await call(hass, "reserve", device_id=device_id, compartment=1)
    await hass.async_block_till_done()

    events = await get_events(hass, CALENDAR)

    assert [event["summary"] for event in events] == [
        "Reserved: Walker (Locker North, compartment 1)",
        "Returned: Hand cart (Locker North, compartment 3)",
    ]
    assert events[1]["description"] == "Outcome: taken back by staff"
    hass.config.language = "de"
    events = await get_events(hass, CALENDAR)
    assert [event["summary"] for event in events] == [
        "Reserviert: Walker (Locker North, Fach 1)",
        "Zurückgegeben: Hand cart (Locker North, Fach 3)",
    ]
    assert events[1]["description"] == "Ausgang: vom Personal zurückgenommen"
