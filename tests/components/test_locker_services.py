"""The lending services inside Home Assistant: answers, refusals, admin checks, events, time."""

from __future__ import annotations

from datetime import datetime, timedelta
import json
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.auth.const import GROUP_ID_USER
from homeassistant.core import Context, Event, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.const import DOMAIN

from .conftest import SetupSite
from .lockers import LOCK, UNLOCK, bank_device, call, commands, loan_state, report, unlocks, wrong

STRINGS = json.loads(
    (Path(__file__).parents[2] / "custom_components/city_ops/strings.json").read_text("utf-8")
)
NORTH = "locker-north"
LAKE = "locker-lake"


# -- helpers ---------------------------------------------------------------------------------


def keypad(hass: HomeAssistant, bank: str, code: str) -> None:
    async_fire_mqtt_message(hass, f"city_ops/{bank}/keypad", json.dumps({"code": code}))


async def refused(
    hass: HomeAssistant, key: str, service: str, **data: Any
) -> ServiceValidationError:
    """Call a service that must refuse with the translation key `key`."""
    with pytest.raises(ServiceValidationError) as raised:
        await call(hass, service, **data)
    err = raised.value
    assert (err.translation_domain, err.translation_key) == (DOMAIN, key)
    # Every refusal has a message, and the message gets every placeholder it names.
    message = STRINGS["exceptions"][key]["message"]
    for name in err.translation_placeholders or {}:
        assert f"{{{name}}}" in message, (key, name)
    return err


class Recorder:
    """Every city_ops_locker_* event."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.events: list[Event[Any]] = []
        hass.bus.async_listen("*", self._add)

    @callback  # run at once when fired, not later in the executor
    def _add(self, event: Event[Any]) -> None:
        if event.event_type.startswith("city_ops_locker_"):
            self.events.append(event)

    @property
    def kinds(self) -> list[str]:
        return [event.event_type.removeprefix("city_ops_locker_") for event in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [dict(e.data) for e in self.events if e.event_type == f"city_ops_locker_{kind}"]


async def stocked(hass: HomeAssistant) -> None:
    """Every compartment of both banks reports closed, locked, item inside."""
    for bank, numbers in ((NORTH, (1, 2, 3)), (LAKE, (1,))):
        for number in numbers:
            report(hass, bank, number, door="closed", locked=True, item_present=True)
    await hass.async_block_till_done()


async def collect(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, bank: str, number: int, code: str
) -> None:
    """Type the code, open the door, take the item, close the door."""
    mqtt_mock.async_publish.reset_mock()
    keypad(hass, bank, code)
    await hass.async_block_till_done()
    assert unlocks(mqtt_mock) == [f"city_ops/{bank}/compartment/{number}/set"]
    report(hass, bank, number, door="open", locked=False)
    report(hass, bank, number, item_present=False)
    report(hass, bank, number, door="closed", locked=True)
    await hass.async_block_till_done()
    assert loan_state(hass, bank, number) == "on_loan"


async def bring_back(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, bank: str, number: int, return_code: str
) -> None:
    """Type the return code, open the door, put the item back, close the door."""
    mqtt_mock.async_publish.reset_mock()
    keypad(hass, bank, return_code)
    await hass.async_block_till_done()
    assert unlocks(mqtt_mock) == [f"city_ops/{bank}/compartment/{number}/set"]
    report(hass, bank, number, door="open", locked=False)
    report(hass, bank, number, item_present=True)
    report(hass, bank, number, door="closed", locked=True)
    await hass.async_block_till_done()


@pytest.fixture
async def north(hass: HomeAssistant, setup_lockers: SetupSite) -> tuple[MockConfigEntry, str]:
    """The locker site, stocked; the device id of Locker North."""
    entry = await setup_lockers()
    await stocked(hass)
    return entry, bank_device(hass, entry.entry_id, "Locker North")


# -- reserve ---------------------------------------------------------------------------------


async def test_reserve_by_compartment_answers_everything_once(
    hass: HomeAssistant, north: tuple[MockConfigEntry, str]
) -> None:
    _, device_id = north
    before = dt_util.utcnow()
    response = await call(
        hass,
        "reserve",
        device_id=device_id,
        compartment=2,
        pickup_window=30,
        loan_period=90,
        borrower="portal-4711",
    )
    assert set(response) == {
        "reservation_id",
        "bank",
        "compartment",
        "item",
        "item_type",
        "code",
        "return_code",
        "pickup_from",
        "pickup_until",
        "loan_period_min",
    }
    assert response["bank"] == "Locker North"
    assert (response["compartment"], response["item"], response["item_type"]) == (
        2,
        "Walker",
        "walker",
    )
    for code in (response["code"], response["return_code"]):
        assert len(code) == 6
        assert code.isdigit()
    assert response["code"] != response["return_code"]
    assert len(response["reservation_id"]) >= 8
    pickup_from = datetime.fromisoformat(response["pickup_from"])
    pickup_until = datetime.fromisoformat(response["pickup_until"])
    assert before <= pickup_from <= dt_util.utcnow()
    assert pickup_until - pickup_from == timedelta(minutes=30)
    assert response["loan_period_min"] == 90
    assert loan_state(hass, NORTH, 2) == "reserved"
    attributes = hass.states.get("sensor.locker_north_compartment_2_loan_state").attributes
    assert "reservation_id" not in attributes
    assert "borrower" not in attributes
    assert attributes["pickup_until"] == response["pickup_until"]
    assert attributes["loan_until"] is None
    assert hass.states.get("sensor.locker_north_items_available").state == "2"


async def test_reserve_by_item_type_takes_the_first_free_one_with_bank_defaults(
    hass: HomeAssistant, north: tuple[MockConfigEntry, str]
) -> None:
    _, device_id = north
    first = await call(hass, "reserve", device_id=device_id, item_type="walker")
    second = await call(hass, "reserve", device_id=device_id, item_type="walker")
    assert (first["compartment"], second["compartment"]) == (1, 2)
    assert first["reservation_id"] != second["reservation_id"]
    assert {first["code"], first["return_code"]}.isdisjoint({second["code"], second["return_code"]})
    span = datetime.fromisoformat(first["pickup_until"]) - datetime.fromisoformat(
        first["pickup_from"]
    )
    assert span == timedelta(minutes=120)
    assert first["loan_period_min"] == 240
    attributes = hass.states.get("sensor.locker_north_items_available").attributes
    assert attributes["by_item_type"] == {"hand_cart": 1, "walker": 0}
    await refused(
        hass, "locker_no_item_available", "reserve", device_id=device_id, item_type="walker"
    )


async def test_reserve_refusals(hass: HomeAssistant, north: tuple[MockConfigEntry, str]) -> None:
    entry, device_id = north
    # Compartment 1 reports its walker gone: not lendable, and item_type skips it.
    report(hass, NORTH, 1, item_present=False)
    await hass.async_block_till_done()
    err = await refused(hass, "locker_item_missing", "reserve", device_id=device_id, compartment=1)
    assert err.translation_placeholders == {"compartment": "1"}
    taken = await call(hass, "reserve", device_id=device_id, item_type="walker")
    assert taken["compartment"] == 2
    await refused(
        hass, "locker_no_item_available", "reserve", device_id=device_id, item_type="walker"
    )
    await refused(hass, "locker_compartment_taken", "reserve", device_id=device_id, compartment=2)
    await refused(
        hass, "locker_no_item_available", "reserve", device_id=device_id, item_type="unicycle"
    )
    await call(hass, "set_out_of_service", device_id=device_id, compartment=3, reason="broken")
    await refused(hass, "locker_out_of_service", "reserve", device_id=device_id, compartment=3)
    await refused(
        hass, "locker_no_item_available", "reserve", device_id=device_id, item_type="hand_cart"
    )
    await refused(
        hass,
        "locker_wrong_item_type",
        "reserve",
        device_id=device_id,
        compartment=2,
        item_type="hand_cart",
    )
    await refused(hass, "locker_compartment_or_item_type", "reserve", device_id=device_id)
    await refused(hass, "locker_unknown_compartment", "reserve", device_id=device_id, compartment=9)
    # A device that is not a bank of a loaded site.
    site_device = next(
        d.id for d in dr.async_get(hass).devices if d.identifiers == {(DOMAIN, entry.entry_id)}
    )
    for other in ("no-such-device", site_device):
        err = await refused(hass, "unknown_locker_bank", "reserve", device_id=other, compartment=1)
        assert err.translation_placeholders == {"device_id": other}
    # Nothing was booked by any refusal.
    assert [loan_state(hass, NORTH, n) for n in (1, 2, 3)] == [
        "available",
        "reserved",
        "out_of_service",
    ]


async def test_nothing_is_lent_before_the_bank_reports_its_items(
    hass: HomeAssistant, setup_lockers: SetupSite
) -> None:
    """The contract counts compartments "available with the item present"; unknown is not."""
    entry = await setup_lockers()
    device_id = bank_device(hass, entry.entry_id, "Locker North")
    await refused(hass, "locker_item_missing", "reserve", device_id=device_id, compartment=1)
    await refused(
        hass, "locker_no_item_available", "reserve", device_id=device_id, item_type="walker"
    )
    report(hass, NORTH, 2, item_present=True)
    await hass.async_block_till_done()
    response = await call(hass, "reserve", device_id=device_id, item_type="walker")
    assert response["compartment"] == 2


@pytest.mark.parametrize(
    "data",
    [
        {"compartment": 0},
        {"compartment": 65},
        {"compartment": "one"},
        {"item_type": ""},
        {"compartment": 1, "pickup_window": 0},
        {"compartment": 1, "pickup_window": 7 * 1440 + 1},
        {"compartment": 1, "loan_period": 0},
        {"compartment": 1, "borrower": "x" * 65},
        {"compartment": 1, "code": "123456"},
    ],
)
async def test_reserve_schema_errors(
    hass: HomeAssistant, north: tuple[MockConfigEntry, str], data: dict[str, Any]
) -> None:
    _, device_id = north
    with pytest.raises(vol.Invalid):
        await call(hass, "reserve", device_id=device_id, **data)
    with pytest.raises(vol.Invalid):
        await call(hass, "reserve", **data)
    assert loan_state(hass, NORTH, 1) == "available"


async def test_unloaded_site_has_no_banks(
    hass: HomeAssistant, north: tuple[MockConfigEntry, str]
) -> None:
    entry, device_id = north
    assert await hass.config_entries.async_unload(entry.entry_id)
    await refused(hass, "unknown_locker_bank", "reserve", device_id=device_id, compartment=1)


# -- cancel, extend ---------------------------------------------------------------------------


async def test_cancel_by_compartment_and_by_reservation_id(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, north: tuple[MockConfigEntry, str]
) -> None:
    _, device_id = north
    first = await call(hass, "reserve", device_id=device_id, compartment=1)
    second = await call(hass, "reserve", device_id=device_id, compartment=2)
    with pytest.raises(vol.Invalid):
        await call(
            hass,
            "cancel",
            device_id=device_id,
            compartment=1,
            reservation_id=first["reservation_id"],
        )
    await refused(hass, "locker_compartment_or_reservation", "cancel", device_id=device_id)
    await refused(
        hass, "locker_unknown_reservation", "cancel", device_id=device_id, reservation_id="nope"
    )
    result = await call(hass, "cancel", device_id=device_id, compartment=1)
    assert result == {"compartment": 1, "state": "available", "loan_until": None}
    result = await call(
        hass, "cancel", device_id=device_id, reservation_id=second["reservation_id"]
    )
    assert result == {"compartment": 2, "state": "available", "loan_until": None}
    assert [loan_state(hass, NORTH, n) for n in (1, 2)] == ["available", "available"]
    await refused(hass, "locker_no_reservation", "cancel", device_id=device_id, compartment=1)
    await refused(
        hass,
        "locker_unknown_reservation",
        "cancel",
        device_id=device_id,
        reservation_id=second["reservation_id"],
    )
    # A cancelled code opens nothing.
    mqtt_mock.async_publish.reset_mock()
    await refused(
        hass, "locker_code_refused", "release_code", device_id=device_id, code=first["code"]
    )
    assert unlocks(mqtt_mock) == []


async def test_cancel_refuses_a_collected_loan(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, north: tuple[MockConfigEntry, str]
) -> None:
    _, device_id = north
    booking = await call(hass, "reserve", device_id=device_id, compartment=3)
    await collect(hass, mqtt_mock, NORTH, 3, booking["code"])
    await refused(hass, "locker_already_collected", "cancel", device_id=device_id, compartment=3)
    assert loan_state(hass, NORTH, 3) == "on_loan"


async def test_extend_a_loan(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, north: tuple[MockConfigEntry, str]
) -> None:
    _, device_id = north
    booking = await call(hass, "reserve", device_id=device_id, compartment=1, loan_period=60)
    await refused(
        hass, "locker_not_on_loan", "extend", device_id=device_id, compartment=1, minutes=30
    )
    await collect(hass, mqtt_mock, NORTH, 1, booking["code"])
    attributes = hass.states.get("sensor.locker_north_compartment_1_loan_state").attributes
    loan_until = datetime.fromisoformat(attributes["loan_until"])
    result = await call(hass, "extend", device_id=device_id, compartment=1, minutes=30)
    assert result["state"] == "on_loan"
    assert datetime.fromisoformat(result["loan_until"]) == loan_until + timedelta(minutes=30)
    result = await call(
        hass, "extend", device_id=device_id, reservation_id=booking["reservation_id"], minutes=15
    )
    assert datetime.fromisoformat(result["loan_until"]) == loan_until + timedelta(minutes=45)
    attributes = hass.states.get("sensor.locker_north_compartment_1_loan_state").attributes
    assert attributes["loan_until"] == result["loan_until"]
    for bad in ({"minutes": 0}, {}, {"minutes": 30 * 1440 + 1}):
        with pytest.raises(vol.Invalid):
            await call(hass, "extend", device_id=device_id, compartment=1, **bad)
    with pytest.raises(vol.Invalid):
        await call(
            hass,
            "extend",
            device_id=device_id,
            compartment=1,
            reservation_id=booking["reservation_id"],
            minutes=5,
        )
    await refused(
        hass, "locker_not_on_loan", "extend", device_id=device_id, compartment=2, minutes=30
    )


# -- codes -----------------------------------------------------------------------------------


async def test_release_code_service_opens_once(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, north: tuple[MockConfigEntry, str]
) -> None:
    entry, device_id = north
    booking = await call(hass, "reserve", device_id=device_id, compartment=2)
    mqtt_mock.async_publish.reset_mock()
    # The return code opens nothing before the item left.
    await refused(
        hass,
        "locker_code_refused",
        "release_code",
        device_id=device_id,
        code=booking["return_code"],
    )
    await refused(hass, "locker_code_refused", "release_code", device_id=device_id, code="12ab56")
    assert unlocks(mqtt_mock) == []
    result = await call(hass, "release_code", device_id=device_id, code=booking["code"])
    assert result == {"compartment": 2}
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == [("city_ops/locker-north/compartment/2/set", UNLOCK)]
    # Typed again a moment later (or redelivered): recognised, not counted, opens nothing.
    await refused(
        hass, "locker_code_already_used", "release_code", device_id=device_id, code=booking["code"]
    )
    assert len(unlocks(mqtt_mock)) == 1
    assert entry.runtime_data.lending.codes_repeated == 1
    with pytest.raises(vol.Invalid):
        await call(hass, "release_code", device_id=device_id)
    with pytest.raises(vol.Invalid):
        await call(hass, "release_code", device_id=device_id, code="1" * 33)
    # Door open, item out, door closed: collected, and the bank gets LOCK.
    report(hass, NORTH, 2, door="open", locked=False)
    report(hass, NORTH, 2, item_present=False)
    report(hass, NORTH, 2, door="closed")
    await hass.async_block_till_done()
    assert loan_state(hass, NORTH, 2) == "on_loan"
    assert commands(mqtt_mock)[-1] == ("city_ops/locker-north/compartment/2/set", LOCK)
    result = await call(hass, "release_code", device_id=device_id, code=booking["return_code"])
    assert result == {"compartment": 2}


async def test_keypad_waits_after_repeated_wrong_codes_and_opens_again(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
    north: tuple[MockConfigEntry, str],
) -> None:
    """Three typos are free; the fourth makes the keypad wait 5 s, the fifth 10 s and alerts."""
    entry, device_id = north
    recorder = Recorder(hass)
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    bad = wrong(booking["code"], booking["return_code"])
    mqtt_mock.async_publish.reset_mock()
    for attempt in range(1, 5):
        await refused(hass, "locker_code_refused", "release_code", device_id=device_id, code=bad)
        assert recorder.of("code_refused")[-1]["failures"] == attempt
    assert recorder.of("keypad_locked") == []
    # Waiting: the right code is refused unchecked, at the keypad and through the service.
    err = await refused(
        hass, "locker_keypad_locked", "release_code", device_id=device_id, code=booking["code"]
    )
    assert set(err.translation_placeholders) == {"until"}
    keypad(hass, NORTH, booking["code"])
    await hass.async_block_till_done()
    assert unlocks(mqtt_mock) == []
    assert loan_state(hass, NORTH, 1) == "reserved"
    assert entry.runtime_data.lending.entries_while_locked == 2
    # The other bank's keypad does not wait.
    lake = bank_device(hass, entry.entry_id, "Locker Lake")
    await refused(hass, "locker_code_refused", "release_code", device_id=lake, code=bad)
    # The fifth wrong entry in a row, after the wait, announces the attempt and waits 10 s.
    freezer.tick(timedelta(seconds=5))
    await refused(hass, "locker_code_refused", "release_code", device_id=device_id, code=bad)
    assert len(recorder.of("keypad_locked")) == 1
    freezer.tick(timedelta(seconds=9))
    await refused(
        hass, "locker_keypad_locked", "release_code", device_id=device_id, code=booking["code"]
    )
    freezer.tick(timedelta(seconds=1))
    result = await call(hass, "release_code", device_id=device_id, code=booking["code"])
    assert result == {"compartment": 1}
    await hass.async_block_till_done()
    assert unlocks(mqtt_mock) == ["city_ops/locker-north/compartment/1/set"]
    for event in recorder.events:
        assert booking["code"] not in repr(event.data)


async def test_keypad_wait_doubles_up_to_its_ceiling(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    north: tuple[MockConfigEntry, str],
) -> None:
    """No live code at the bank: the ceiling is 100 s, reached after 5, 10, ... 80 s."""
    entry, device_id = north
    asset = next(iter(entry.runtime_data.site.locker_banks))
    bank = entry.runtime_data.site.locker_banks[asset]
    waits = []
    for _ in range(10):
        await refused(hass, "locker_code_refused", "release_code", device_id=device_id, code="0000")
        until = bank.keypad_locked_until(dt_util.utcnow())
        wait = (until - dt_util.utcnow()).total_seconds() if until else 0
        waits.append(round(wait))
        freezer.tick(timedelta(seconds=wait))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    assert waits == [0, 0, 0, 5, 10, 20, 40, 80, 100, 100]


# -- admin services ----------------------------------------------------------------------------


async def test_mark_returned(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, north: tuple[MockConfigEntry, str]
) -> None:
    _, device_id = north
    recorder = Recorder(hass)
    booking = await call(hass, "reserve", device_id=device_id, compartment=3)
    await refused(hass, "locker_not_on_loan", "mark_returned", device_id=device_id, compartment=3)
    await collect(hass, mqtt_mock, NORTH, 3, booking["code"])
    result = await call(hass, "mark_returned", device_id=device_id, compartment=3)
    assert result == {"compartment": 3, "state": "available", "loan_until": None}
    assert loan_state(hass, NORTH, 3) == "available"
    assert recorder.of("returned")[-1]["by_staff"] is True
    # The return code died with the loan.
    await refused(
        hass,
        "locker_code_refused",
        "release_code",
        device_id=device_id,
        code=booking["return_code"],
    )
    with pytest.raises(vol.Invalid):
        await call(hass, "mark_returned", device_id=device_id)


async def test_out_of_service_and_back(
    hass: HomeAssistant, north: tuple[MockConfigEntry, str]
) -> None:
    _, device_id = north
    recorder = Recorder(hass)
    result = await call(
        hass, "set_out_of_service", device_id=device_id, compartment=1, reason="wheel broken"
    )
    assert result == {"compartment": 1, "state": "out_of_service", "loan_until": None}
    state = hass.states.get("sensor.locker_north_compartment_1_loan_state")
    assert state.state == "out_of_service"
    assert state.attributes["reason"] == "wheel broken"
    assert hass.states.get("sensor.locker_north_items_available").attributes["by_item_type"] == {
        "hand_cart": 1,
        "walker": 1,
    }
    assert recorder.of("out_of_service")[0]["reason"] == "wheel broken"
    # Asking again changes nothing and announces nothing.
    await call(
        hass, "set_out_of_service", device_id=device_id, compartment=1, reason="wheel broken"
    )
    assert recorder.kinds == ["out_of_service"]
    result = await call(
        hass, "set_out_of_service", device_id=device_id, compartment=1, out_of_service=False
    )
    assert result["state"] == "available"
    assert (
        "reason" not in hass.states.get("sensor.locker_north_compartment_1_loan_state").attributes
    )
    assert recorder.kinds == ["out_of_service", "in_service"]
    # A booked compartment stays in lending.
    await call(hass, "reserve", device_id=device_id, compartment=2)
    await refused(
        hass, "locker_compartment_in_use", "set_out_of_service", device_id=device_id, compartment=2
    )


async def test_open_for_maintenance_unlocks_without_a_code(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    hass_admin_user: MockUser,
    north: tuple[MockConfigEntry, str],
) -> None:
    _, device_id = north
    recorder = Recorder(hass)
    mqtt_mock.async_publish.reset_mock()
    context = Context(user_id=hass_admin_user.id)
    result = await call(hass, "open_for_maintenance", context, device_id=device_id, compartment=3)
    assert result == {"compartment": 3, "state": "available", "loan_until": None}
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == [("city_ops/locker-north/compartment/3/set", UNLOCK)]
    assert recorder.kinds == ["maintenance"]
    assert recorder.events[0].context.user_id == hass_admin_user.id
    # Staff take the cart out and put it back: no loan, and LOCK once the door closes.
    report(hass, NORTH, 3, door="open", locked=False)
    report(hass, NORTH, 3, item_present=False)
    report(hass, NORTH, 3, item_present=True)
    report(hass, NORTH, 3, door="closed", locked=True)
    await hass.async_block_till_done()
    assert commands(mqtt_mock)[-1] == ("city_ops/locker-north/compartment/3/set", LOCK)
    assert loan_state(hass, NORTH, 3) == "available"
    assert recorder.kinds == ["maintenance"]


@pytest.fixture
async def plain_user(hass: HomeAssistant, hass_admin_user: MockUser) -> MockUser:
    """A non-admin user who may control every entity (the default group of new users)."""
    group = await hass.auth.async_get_group(GROUP_ID_USER)
    return MockUser(name="Resident", groups=[group]).add_to_hass(hass)


@pytest.mark.parametrize("read_only", [True, False])
async def test_admin_only_for_non_admins(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    north: tuple[MockConfigEntry, str],
    hass_read_only_user: MockUser,
    plain_user: MockUser,
    read_only: bool,
) -> None:
    """A read-only user, and a user who may control entities but is no admin, open nothing."""
    _, device_id = north
    user = hass_read_only_user if read_only else plain_user
    assert not user.is_admin
    context = Context(user_id=user.id)
    recorder = Recorder(hass)
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    await collect(hass, mqtt_mock, NORTH, 1, booking["code"])
    mqtt_mock.async_publish.reset_mock()
    admin_calls: list[tuple[str, dict[str, Any]]] = [
        ("mark_returned", {"compartment": 1}),
        ("set_out_of_service", {"compartment": 2}),
        ("set_out_of_service", {"compartment": 2, "out_of_service": False}),
        ("open_for_maintenance", {"compartment": 2}),
    ]
    for service, data in admin_calls:
        with pytest.raises(Unauthorized):
            await call(hass, service, context, device_id=device_id, **data)
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            "lock",
            "unlock",
            {"entity_id": "lock.locker_north_compartment_2"},
            blocking=True,
            context=context,
        )
    await hass.async_block_till_done()
    assert unlocks(mqtt_mock) == []
    assert [loan_state(hass, NORTH, n) for n in (1, 2)] == ["on_loan", "available"]
    assert recorder.kinds == ["reserved", "released", "collected"]


@pytest.mark.parametrize("admin", [True, False])
async def test_admins_and_automations_may_open(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    hass_admin_user: MockUser,
    north: tuple[MockConfigEntry, str],
    admin: bool,
) -> None:
    """An admin's call and a call without a user (an automation) both open a compartment."""
    _, device_id = north
    context = Context(user_id=hass_admin_user.id) if admin else None
    mqtt_mock.async_publish.reset_mock()
    await hass.services.async_call(
        "lock",
        "unlock",
        {"entity_id": "lock.locker_north_compartment_2"},
        blocking=True,
        context=context,
    )
    await call(hass, "open_for_maintenance", context, device_id=device_id, compartment=1)
    await hass.async_block_till_done()
    assert unlocks(mqtt_mock) == [
        "city_ops/locker-north/compartment/2/set",
        "city_ops/locker-north/compartment/1/set",
    ]
    booking = await call(hass, "reserve", context, device_id=device_id, compartment=3)
    await collect(hass, mqtt_mock, NORTH, 3, booking["code"])
    await call(hass, "mark_returned", context, device_id=device_id, compartment=3)
    await call(hass, "set_out_of_service", context, device_id=device_id, compartment=3)
    assert loan_state(hass, NORTH, 3) == "out_of_service"


async def test_anyone_may_lock(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    plain_user: MockUser,
    north: tuple[MockConfigEntry, str],
) -> None:
    mqtt_mock.async_publish.reset_mock()
    await hass.services.async_call(
        "lock",
        "lock",
        {"entity_id": "lock.locker_north_compartment_2"},
        blocking=True,
        context=Context(user_id=plain_user.id),
    )
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == [("city_ops/locker-north/compartment/2/set", LOCK)]


# -- events ----------------------------------------------------------------------------------


async def test_events_name_the_booking_and_never_a_code(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, north: tuple[MockConfigEntry, str]
) -> None:
    entry, device_id = north
    recorder = Recorder(hass)
    codes: list[str] = []

    first = await call(hass, "reserve", device_id=device_id, compartment=1, borrower="b-1")
    codes += [first["code"], first["return_code"]]
    await collect(hass, mqtt_mock, NORTH, 1, first["code"])
    await call(hass, "extend", device_id=device_id, compartment=1, minutes=10)
    await bring_back(hass, mqtt_mock, NORTH, 1, first["return_code"])
    assert loan_state(hass, NORTH, 1) == "available"

    second = await call(hass, "reserve", device_id=device_id, item_type="hand_cart", borrower="b-2")
    codes += [second["code"], second["return_code"]]
    await call(hass, "cancel", device_id=device_id, reservation_id=second["reservation_id"])
    await call(hass, "set_out_of_service", device_id=device_id, compartment=2, reason="check")
    await call(hass, "set_out_of_service", device_id=device_id, compartment=2, out_of_service=False)
    await call(hass, "open_for_maintenance", device_id=device_id, compartment=2)
    for _ in range(5):
        keypad(hass, NORTH, wrong(*codes))
    await hass.async_block_till_done()

    assert recorder.kinds == [
        "reserved",
        "released",
        "collected",
        "extended",
        "released",
        "returned",
        "reserved",
        "cancelled",
        "out_of_service",
        "in_service",
        "maintenance",
        # The fifth entry came within the 5 s wait after the fourth: refused unchecked.
        *["code_refused"] * 4,
    ]
    for event in recorder.events:
        assert event.data["config_entry_id"] == entry.entry_id
        assert event.data["bank"] == "Locker North"
        assert event.data["bank_device_id"] == device_id
        for code in codes:
            assert code not in repr(event.data), event.event_type
    for kind in ("reserved", "released", "collected", "extended", "returned"):
        for data in recorder.of(kind)[:1]:
            assert data["compartment"] == 1
            assert data["item"] == "Walker"
            assert data["item_type"] == "walker"
            assert data["reservation_id"] == first["reservation_id"]
            assert data["borrower"] == "b-1"
    assert [d["purpose"] for d in recorder.of("released")] == ["pickup", "return"]
    cancelled = recorder.of("cancelled")[0]
    assert (cancelled["compartment"], cancelled["item"], cancelled["borrower"]) == (
        3,
        "Hand cart",
        "b-2",
    )
    assert cancelled["reservation_id"] == second["reservation_id"]
    assert recorder.of("out_of_service")[0]["compartment"] == 2
    assert recorder.of("maintenance")[0]["compartment"] == 2
    assert [d["failures"] for d in recorder.of("code_refused")] == [1, 2, 3, 4]
    assert all("compartment" not in data for data in recorder.of("code_refused"))


# -- time ------------------------------------------------------------------------------------


async def test_a_loan_falls_overdue_once(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
    north: tuple[MockConfigEntry, str],
) -> None:
    _, device_id = north
    recorder = Recorder(hass)
    booking = await call(hass, "reserve", device_id=device_id, compartment=2, loan_period=60)
    await collect(hass, mqtt_mock, NORTH, 2, booking["code"])
    loan_until = datetime.fromisoformat(
        hass.states.get("sensor.locker_north_compartment_2_loan_state").attributes["loan_until"]
    )
    freezer.move_to(loan_until - timedelta(seconds=30))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert loan_state(hass, NORTH, 2) == "on_loan"
    for _ in range(3):
        freezer.tick(timedelta(minutes=1))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    assert loan_state(hass, NORTH, 2) == "overdue"
    overdue = recorder.of("overdue")
    assert len(overdue) == 1
    assert overdue[0]["reservation_id"] == booking["reservation_id"]
    assert overdue[0]["state"] == "overdue"
    # Extending an overdue loan runs from now again.
    result = await call(hass, "extend", device_id=device_id, compartment=2, minutes=30)
    assert result["state"] == "on_loan"
    assert datetime.fromisoformat(result["loan_until"]) == dt_util.utcnow() + timedelta(minutes=30)
    # The return code still works while overdue (after falling overdue again).
    freezer.tick(timedelta(minutes=31))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert loan_state(hass, NORTH, 2) == "overdue"
    assert len(recorder.of("overdue")) == 2
    await bring_back(hass, mqtt_mock, NORTH, 2, booking["return_code"])
    assert loan_state(hass, NORTH, 2) == "available"


async def test_an_uncollected_reservation_expires(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
    north: tuple[MockConfigEntry, str],
) -> None:
    _, device_id = north
    recorder = Recorder(hass)
    booking = await call(hass, "reserve", device_id=device_id, compartment=1, pickup_window=15)
    freezer.tick(timedelta(minutes=14))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert loan_state(hass, NORTH, 1) == "reserved"
    freezer.tick(timedelta(minutes=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert loan_state(hass, NORTH, 1) == "available"
    expired = recorder.of("expired")
    assert len(expired) == 1
    assert expired[0]["reservation_id"] == booking["reservation_id"]
    assert expired[0]["compartment"] == 1
    assert hass.states.get("sensor.locker_north_items_available").state == "3"
    mqtt_mock.async_publish.reset_mock()
    await refused(
        hass, "locker_code_refused", "release_code", device_id=device_id, code=booking["code"]
    )
    assert unlocks(mqtt_mock) == []


# -- persistence -----------------------------------------------------------------------------


def locker_entity_states(hass: HomeAssistant) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        state.entity_id: (state.state, dict(state.attributes))
        for state in hass.states.async_all()
        if "locker_" in state.entity_id
    }


async def test_bookings_and_lockouts_survive_a_restart(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    hass_storage: dict[str, Any],
    north: tuple[MockConfigEntry, str],
) -> None:
    entry, device_id = north
    key = f"{DOMAIN}.{entry.entry_id}"
    lake = bank_device(hass, entry.entry_id, "Locker Lake")
    booking = await call(hass, "reserve", device_id=device_id, compartment=2, borrower="b-9")
    # Saved at once, without waiting for a save delay, and without the codes.
    assert key in hass_storage
    stored = json.dumps(hass_storage[key])
    assert booking["reservation_id"] in stored
    assert booking["code"] not in stored
    assert booking["return_code"] not in stored

    await collect(hass, mqtt_mock, NORTH, 2, booking["code"])
    lake_booking = await call(hass, "reserve", device_id=lake, compartment=1)
    codes = [booking["code"], booking["return_code"], lake_booking["code"]]
    codes.append(lake_booking["return_code"])
    for _ in range(4):
        await refused(
            hass, "locker_code_refused", "release_code", device_id=lake, code=wrong(*codes)
        )
    keypad_saved = json.loads(json.dumps(hass_storage[key]))["data"]["locker_banks"]
    assert any(bank["keypad"]["locked_until"] for bank in keypad_saved.values())
    stored = json.dumps(hass_storage[key])
    for code in codes:
        assert code not in stored
    before = locker_entity_states(hass)
    assert before["sensor.locker_north_compartment_2_loan_state"][0] == "on_loan"
    assert before["sensor.locker_lake_compartment_1_loan_state"][0] == "reserved"

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert locker_entity_states(hass) == before
    attributes = hass.states.get("sensor.locker_north_compartment_2_loan_state").attributes
    # On loan: the due-back time survives (the pickup window is history once collected).
    assert attributes["loan_until"] is not None
    assert "pickup_until" not in attributes
    bank = entry.runtime_data.site.locker_banks
    assert any(
        c.status.loan is not None and c.status.loan.reservation_id == booking["reservation_id"]
        for b in bank.values()
        for c in b.compartments.values()
    )
    mqtt_mock.async_publish.reset_mock()
    await refused(
        hass, "locker_keypad_locked", "release_code", device_id=lake, code=lake_booking["code"]
    )
    # The other bank's keypad was never locked: its return code works after the restart.
    result = await call(hass, "release_code", device_id=device_id, code=booking["return_code"])
    assert result == {"compartment": 2}
    await hass.async_block_till_done()
    assert unlocks(mqtt_mock) == ["city_ops/locker-north/compartment/2/set"]
    for code in codes:
        assert code not in json.dumps(hass_storage[key])


async def test_lending_uses_no_deprecated_home_assistant_api(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    north: tuple[MockConfigEntry, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Events name the bank's device without an API that stops working in HA 2027.8."""
    _, device_id = north
    recorder = Recorder(hass)
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    await collect(hass, mqtt_mock, NORTH, 1, booking["code"])
    assert {event.data["bank_device_id"] for event in recorder.events} == {device_id}
    assert "Detected that custom integration 'city_ops'" not in caplog.text


# -- locking again ---------------------------------------------------------------------------


async def test_the_bank_gets_lock_after_a_pickup_and_after_a_return(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, north: tuple[MockConfigEntry, str]
) -> None:
    """After the door closes the bank gets LOCK (lockers contract), whatever happened inside."""
    _, device_id = north
    topic = "city_ops/locker-north/compartment/2/set"
    booking = await call(hass, "reserve", device_id=device_id, compartment=2)
    await collect(hass, mqtt_mock, NORTH, 2, booking["code"])
    assert commands(mqtt_mock) == [(topic, UNLOCK), (topic, LOCK)]
    await bring_back(hass, mqtt_mock, NORTH, 2, booking["return_code"])
    assert loan_state(hass, NORTH, 2) == "available"
    assert commands(mqtt_mock) == [(topic, UNLOCK), (topic, LOCK)]


async def test_an_unused_unlock_is_locked_again(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
    north: tuple[MockConfigEntry, str],
) -> None:
    """Released, but the door never opened: LOCK after the unlock timeout (90 s)."""
    _, device_id = north
    topic = "city_ops/locker-north/compartment/1/set"
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    mqtt_mock.async_publish.reset_mock()
    await call(hass, "release_code", device_id=device_id, code=booking["code"])
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == [(topic, UNLOCK)]
    freezer.tick(timedelta(minutes=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == [(topic, UNLOCK), (topic, LOCK)]


async def test_a_cancelled_release_is_locked_again(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
    north: tuple[MockConfigEntry, str],
) -> None:
    """Released, door not yet open: no cancelling under the borrower's hands; then locked again."""
    _, device_id = north
    topic = "city_ops/locker-north/compartment/1/set"
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    mqtt_mock.async_publish.reset_mock()
    await call(hass, "release_code", device_id=device_id, code=booking["code"])
    with pytest.raises(ServiceValidationError) as refused:
        await call(hass, "cancel", device_id=device_id, compartment=1)
    assert refused.value.translation_key == "locker_pickup_under_way"
    freezer.tick(timedelta(minutes=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert commands(mqtt_mock)[-1] == (topic, LOCK)
    await call(hass, "cancel", device_id=device_id, compartment=1)
    assert hass.states.get("sensor.locker_north_compartment_1_loan_state").state == "available"


async def test_a_release_at_the_end_of_the_pickup_window_is_locked_again(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
    north: tuple[MockConfigEntry, str],
) -> None:
    """Released in the last minute of the window, door never opened: expired, and locked again."""
    _, device_id = north
    topic = "city_ops/locker-north/compartment/1/set"
    booking = await call(hass, "reserve", device_id=device_id, compartment=1, pickup_window=10)
    freezer.tick(timedelta(minutes=9, seconds=50))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    mqtt_mock.async_publish.reset_mock()
    await call(hass, "release_code", device_id=device_id, code=booking["code"])
    for _ in range(3):
        freezer.tick(timedelta(minutes=1))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    assert loan_state(hass, NORTH, 1) == "available"
    assert commands(mqtt_mock) == [(topic, UNLOCK), (topic, LOCK)]
