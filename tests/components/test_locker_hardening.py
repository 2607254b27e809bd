"""The lending lockers' review fixes, each proven inside Home Assistant.

Every test here names the fix it guards and fails if that fix is reverted (see each docstring).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
import json
import logging
from pathlib import Path
import threading
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Context, Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops import lending as lending_module
from custom_components.city_ops.const import DOMAIN
from custom_components.city_ops.diagnostics import async_get_config_entry_diagnostics
from custom_components.city_ops.model.locker import LockerRefused

from .conftest import SetupSite
from .lockers import UNLOCK, bank_device, call, commands, loan_state, report, unlocks, wrong

NORTH = "locker-north"
LAKE = "locker-lake"
NORTH_1 = "city_ops/locker-north/compartment/1/set"


# -- helpers ---------------------------------------------------------------------------------


def bank_asset(entry: MockConfigEntry, name: str) -> str:
    """The asset id (subentry id) of a bank by its name."""
    runtime = entry.runtime_data
    for asset_id in runtime.site.locker_banks:
        if runtime.assets[asset_id].name == name:
            return asset_id
    raise AssertionError(name)


def reservation_shown(hass: HomeAssistant, bank: str, number: int) -> str | None:
    """The booking a compartment holds, from the running model (states never show it)."""
    for entry in hass.config_entries.async_entries(DOMAIN):
        runtime = entry.runtime_data
        for asset_id, locker_bank in runtime.site.locker_banks.items():
            if runtime.assets[asset_id].device == bank:
                loan = locker_bank.compartments[number].status.loan
                return loan.reservation_id if loan else None
    raise AssertionError(bank)


async def refused(hass: HomeAssistant, key: str, service: str, **data: Any) -> None:
    """Call a service that must refuse with our translation key `key`."""
    with pytest.raises(ServiceValidationError) as raised:
        await call(hass, service, **data)
    assert (raised.value.translation_domain, raised.value.translation_key) == (DOMAIN, key)


async def keypad_state(hass: HomeAssistant, entry: MockConfigEntry, bank: str) -> dict[str, Any]:
    """The bank's keypad as diagnostics show it."""
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    return dict(diagnostics["lockers"]["banks"][bank]["keypad"])


def stored_banks(hass_storage: dict[str, Any], entry: MockConfigEntry) -> dict[str, Any]:
    return json.loads(json.dumps(hass_storage[f"{DOMAIN}.{entry.entry_id}"]["data"]))[
        "locker_banks"
    ]


def event_kinds(events: list[Event[Any]]) -> list[str]:
    return [event.event_type.removeprefix("city_ops_locker_") for event in events]


def record_events(hass: HomeAssistant) -> list[Event[Any]]:
    events: list[Event[Any]] = []

    @callback
    def add(event: Event[Any]) -> None:
        if event.event_type.startswith("city_ops_locker_"):
            events.append(event)

    hass.bus.async_listen("*", add)
    return events


async def stocked(hass: HomeAssistant) -> None:
    """Every compartment of both banks reports closed, locked, item inside."""
    for bank, numbers in ((NORTH, (1, 2, 3)), (LAKE, (1,))):
        for number in numbers:
            report(hass, bank, number, door="closed", locked=True, item_present=True)
    await hass.async_block_till_done()


@pytest.fixture
async def north(hass: HomeAssistant, setup_lockers: SetupSite) -> tuple[MockConfigEntry, str]:
    """The locker site, stocked; the device id of Locker North."""
    entry = await setup_lockers()
    await stocked(hass)
    return entry, bank_device(hass, entry.entry_id, "Locker North")


class SlowCodes:
    """`issue_codes` that holds its executor thread until released (a reserve under way)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.go_on = threading.Event()
        self._real = lending_module.issue_codes

    def __call__(self, *args: Any) -> Any:
        self.entered.set()
        if not self.go_on.wait(10):
            raise TimeoutError("the test never released issue_codes")
        return self._real(*args)

    async def wait_entered(self, hass: HomeAssistant) -> None:
        assert await hass.async_add_executor_job(self.entered.wait, 5)


# -- 1. retained keypad messages --------------------------------------------------------------


async def test_a_retained_keypad_entry_opens_nothing_and_is_no_wrong_entry(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, north: tuple[MockConfigEntry, str]
) -> None:
    """Reverted (keypad retained like compartment states): the retained valid code sends
    UNLOCK, the retained wrong code counts a failure at Locker Lake, nothing is counted under
    `retained`. The broker hands out one retained message per topic and subscription, so the
    wrong code goes to the other bank's keypad.
    """
    entry, device_id = north
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    bad = wrong(booking["code"], booking["return_code"])
    mqtt_mock.async_publish.reset_mock()
    async_fire_mqtt_message(
        hass, "city_ops/locker-north/keypad", f'{{"code": "{booking["code"]}"}}', retain=True
    )
    async_fire_mqtt_message(
        hass, "city_ops/locker-lake/keypad", f'{{"code": "{bad}"}}', retain=True
    )
    await hass.async_block_till_done()

    assert unlocks(mqtt_mock) == []
    assert loan_state(hass, NORTH, 1) == "reserved"
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["messages"]["rejected"]["retained"] == 2
    for bank in ("Locker North", "Locker Lake"):
        assert diagnostics["lockers"]["banks"][bank]["keypad"]["failures"] == 0, bank
    assert diagnostics["lockers"]["codes_accepted"] == 0
    assert diagnostics["lockers"]["codes_refused"] == 0

    # The same entry typed live opens the compartment.
    async_fire_mqtt_message(
        hass, "city_ops/locker-north/keypad", f'{{"code": "{booking["code"]}"}}'
    )
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == [(NORTH_1, UNLOCK)]
    assert entry.runtime_data.lending.codes_accepted == 1


# -- 2. reserve answers only with a response ------------------------------------------------


@pytest.mark.parametrize("blocking", [True, False])
async def test_reserve_without_taking_the_answer_is_refused_and_books_nothing(
    hass: HomeAssistant, north: tuple[MockConfigEntry, str], blocking: bool
) -> None:
    """Reverted (SupportsResponse.OPTIONAL): the call books compartment 1 and its codes are
    lost; no ServiceValidationError is raised.
    """
    entry, device_id = north
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN, "reserve", {"device_id": device_id, "compartment": 1}, blocking=blocking
        )
    assert raised.value.translation_key == "service_lacks_response_request"
    await hass.async_block_till_done()
    assert loan_state(hass, NORTH, 1) == "available"
    assert (
        entry.runtime_data.site.locker_banks[bank_asset(entry, "Locker North")].active_loans() == []
    )


# -- 3. the asset file: admins only, never into .storage ------------------------------------


def bank_feature(name: str, device: str, numbers: tuple[int, ...]) -> dict[str, Any]:
    items = {1: ("Walker", "walker"), 2: ("Walker", "walker"), 3: ("Hand cart", "hand_cart")}
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [10.0010, 53.7010]},
        "properties": {
            "kind": "locker_bank",
            "name": name,
            "source": {"kind": "native", "device": device},
            "compartments": [
                {"number": n, "item": items[n][0], "item_type": items[n][1]} for n in numbers
            ],
            "pickup_window_min": 120,
            "loan_period_min": 240,
        },
    }


def write_asset_file(path: Path, *features: dict[str, Any]) -> None:
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": list(features)}), encoding="utf-8"
    )


@pytest.fixture
def config_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A private config dir with a .storage folder, as Home Assistant has one."""
    hass.config.config_dir = str(tmp_path)
    (tmp_path / ".storage").mkdir()
    return tmp_path


@pytest.mark.parametrize("who", ["system_user", "read_only_user"])
async def test_asset_file_services_are_for_admins_only(
    hass: HomeAssistant,
    config_dir: Path,
    setup_lockers: SetupSite,
    hass_admin_user: MockUser,
    hass_read_only_user: MockUser,
    who: str,
) -> None:
    """Reverted (plain async_register): both non-admins import a bank and write a file.

    Home Assistant 2026.10 refuses nobody before the handler here: the read-only user reaches
    the admin check just like a user of the default group (both raise Unauthorized from it).
    """
    entry = await setup_lockers()
    if who == "system_user":
        user = await hass.auth.async_create_user("x", group_ids=["system-users"])
    else:
        user = hass_read_only_user
    assert not user.is_admin
    write_asset_file(
        config_dir / "in.geojson", bank_feature("Locker Meadow", "locker-meadow", (1,))
    )
    context = Context(user_id=user.id)
    for service, path in (("import_assets", "in.geojson"), ("export_assets", "out.geojson")):
        with pytest.raises(Unauthorized):
            await call(hass, service, context, config_entry_id=entry.entry_id, path=path)
    await hass.async_block_till_done()
    assert not (config_dir / "out.geojson").exists()
    assert "Locker Meadow" not in {sub.title for sub in entry.subentries.values()}

    admin = Context(user_id=hass_admin_user.id)
    exported = await call(
        hass, "export_assets", admin, config_entry_id=entry.entry_id, path="out.geojson"
    )
    assert exported["count"] == 2
    assert (config_dir / "out.geojson").exists()
    imported = await call(
        hass, "import_assets", admin, config_entry_id=entry.entry_id, path="in.geojson"
    )
    await hass.async_block_till_done()
    assert imported == {"added": ["Locker Meadow"], "updated": [], "unchanged": []}


@pytest.mark.parametrize(
    "path",
    [
        ".storage/evil.json",
        ".storage/city_ops.{entry_id}",
        "./.storage/evil.json",
        "sub/../.storage/evil.json",
        ".storage",
    ],
)
async def test_export_never_writes_into_storage(
    hass: HomeAssistant, config_dir: Path, setup_lockers: SetupSite, path: str
) -> None:
    """Reverted (only paths outside the config dir refused): the asset file is written over
    `.storage/city_ops.<entry_id>` (bookings and lock-outs) or next to it; no refusal.
    """
    entry = await setup_lockers()
    path = path.format(entry_id=entry.entry_id)
    with pytest.raises(ServiceValidationError) as raised:
        await call(hass, "export_assets", config_entry_id=entry.entry_id, path=path)
    assert (raised.value.translation_domain, raised.value.translation_key) == (
        DOMAIN,
        "path_outside_config",
    )
    assert sorted(p.name for p in (config_dir / ".storage").iterdir()) == []


async def test_import_never_reads_from_storage(
    hass: HomeAssistant, config_dir: Path, setup_lockers: SetupSite
) -> None:
    """Reverted: a (valid) asset file inside .storage is imported."""
    entry = await setup_lockers()
    write_asset_file(
        config_dir / ".storage" / "assets.json",
        bank_feature("Locker Meadow", "locker-meadow", (1,)),
    )
    await refused(
        hass,
        "path_outside_config",
        "import_assets",
        config_entry_id=entry.entry_id,
        path=".storage/assets.json",
    )
    await hass.async_block_till_done()
    assert "Locker Meadow" not in {sub.title for sub in entry.subentries.values()}


# -- 4. the asset file never drops a booked compartment --------------------------------------


async def test_import_refuses_to_drop_a_reserved_compartment(
    hass: HomeAssistant, config_dir: Path, north: tuple[MockConfigEntry, str]
) -> None:
    """Reverted: the file is imported, the site reloads without compartment 1 and the
    reservation (with the codes the borrower holds) is gone.
    """
    entry, device_id = north
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    write_asset_file(config_dir / "drop.geojson", bank_feature("Locker North", NORTH, (2, 3)))
    with pytest.raises(ServiceValidationError) as raised:
        await call(hass, "import_assets", config_entry_id=entry.entry_id, path="drop.geojson")
    err = raised.value
    assert (err.translation_domain, err.translation_key) == (DOMAIN, "invalid_asset_file")
    assert err.translation_placeholders["count"] == "1"
    assert "'Locker North': compartment 1 is reserved" in err.translation_placeholders["problems"]
    await hass.async_block_till_done()
    north_sub = next(s for s in entry.subentries.values() if s.title == "Locker North")
    assert [c["number"] for c in north_sub.data["compartments"]] == [1, 2, 3]
    assert loan_state(hass, NORTH, 1) == "reserved"
    assert reservation_shown(hass, NORTH, 1) == booking["reservation_id"]

    # Dropping a free compartment is fine, and the reservation lives on through the reload.
    write_asset_file(config_dir / "keep.geojson", bank_feature("Locker North", NORTH, (1, 2)))
    result = await call(hass, "import_assets", config_entry_id=entry.entry_id, path="keep.geojson")
    await hass.async_block_till_done()
    assert result["updated"] == ["Locker North"]
    bank = entry.runtime_data.site.locker_banks[bank_asset(entry, "Locker North")]
    assert sorted(bank.compartments) == [1, 2]
    assert loan_state(hass, NORTH, 1) == "reserved"
    assert reservation_shown(hass, NORTH, 1) == booking["reservation_id"]


async def test_a_dropped_free_compartment_takes_its_entities_along(
    hass: HomeAssistant,
    config_dir: Path,
    north: tuple[MockConfigEntry, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its entities would stay unavailable forever; its stored state is no damage to warn of."""
    entry, _ = north
    registry = er.async_get(hass)
    assert registry.async_get("sensor.locker_north_compartment_3_loan_state") is not None
    write_asset_file(config_dir / "keep.geojson", bank_feature("Locker North", NORTH, (1, 2)))
    await call(hass, "import_assets", config_entry_id=entry.entry_id, path="keep.geojson")
    await hass.async_block_till_done()
    for entity_id in (
        "lock.locker_north_compartment_3",
        "binary_sensor.locker_north_compartment_3_door",
        "binary_sensor.locker_north_compartment_3_item",
        "sensor.locker_north_compartment_3_loan_state",
    ):
        assert registry.async_get(entity_id) is None, entity_id
        assert hass.states.get(entity_id) is None, entity_id
    assert registry.async_get("sensor.locker_north_compartment_2_loan_state") is not None
    assert registry.async_get("sensor.locker_north_items_available") is not None
    assert "unreadable stored state" not in caplog.text


# -- 5. a stopping site: refusals, and waiting for calls under way ---------------------------


async def test_a_stopped_lending_refuses_new_calls(
    hass: HomeAssistant, north: tuple[MockConfigEntry, str]
) -> None:
    """Reverted (no `stopped` check): the reserve after async_stop books compartment 1 in a
    runtime that is going away.
    """
    entry, device_id = north
    lending = entry.runtime_data.lending
    asset_id = bank_asset(entry, "Locker North")
    await lending.async_stop()
    with pytest.raises(LockerRefused) as raised:
        await lending.async_reserve(
            asset_id,
            compartment=1,
            item_type=None,
            pickup_window=None,
            loan_period=None,
            borrower="",
            context=None,
        )
    assert raised.value.reason == "site_reloading"
    with pytest.raises(LockerRefused) as raised:
        await lending.async_release_code(asset_id, "123456", None)
    assert raised.value.reason == "site_reloading"
    # Through the service, the refusal has its message.
    await refused(hass, "locker_site_reloading", "reserve", device_id=device_id, compartment=2)
    assert lending.banks[asset_id].active_loans() == []
    assert lending.banks[asset_id].keypad.failures == 0
    assert loan_state(hass, NORTH, 1) == "available"


async def test_stop_waits_for_a_reserve_holding_the_bank(
    hass: HomeAssistant, hass_storage: dict[str, Any], north: tuple[MockConfigEntry, str]
) -> None:
    """Reverted (stop does not wait on the bank locks): async_stop returns while the reserve
    is still issuing codes, before the booking is stored.
    """
    entry, _ = north
    lending = entry.runtime_data.lending
    asset_id = bank_asset(entry, "Locker North")
    slow = SlowCodes()
    seen_when_stopped: list[Any] = []

    async def stop() -> None:
        await lending.async_stop()
        loan = stored_banks(hass_storage, entry)[asset_id]["compartments"]["1"]["loan"]
        seen_when_stopped.append(loan and loan["reservation_id"])

    with patch("custom_components.city_ops.lending.issue_codes", slow):
        reserve = hass.async_create_task(
            lending.async_reserve(
                asset_id,
                compartment=1,
                item_type=None,
                pickup_window=None,
                loan_period=None,
                borrower="b-1",
                context=None,
            )
        )
        try:
            await slow.wait_entered(hass)
            stopping = hass.async_create_task(stop())
            done, _ = await asyncio.wait({stopping}, timeout=0.5)
            assert not done, "async_stop returned while a reserve held the bank"
            assert lending.stopped
        finally:
            slow.go_on.set()
        reservation = await reserve
        await stopping
    assert seen_when_stopped == [reservation.loan.reservation_id]


async def test_a_reload_keeps_reservations_made_before_and_under_way(
    hass: HomeAssistant, north: tuple[MockConfigEntry, str]
) -> None:
    """Reverted (unload does not wait): the reserve under way finishes in the old runtime after
    the new one loaded the store; compartment 2 shows available and its codes open nothing.
    (Compartment 1, booked before the reload, survives either way: reserve stores at once.)
    """
    entry, device_id = north
    before = await call(hass, "reserve", device_id=device_id, compartment=1)
    old_runtime = entry.runtime_data
    slow = SlowCodes()
    with patch("custom_components.city_ops.lending.issue_codes", slow):
        during = hass.async_create_task(call(hass, "reserve", device_id=device_id, compartment=2))
        try:
            await slow.wait_entered(hass)
            reload = hass.async_create_task(hass.config_entries.async_reload(entry.entry_id))
            done, _ = await asyncio.wait({reload}, timeout=1.0)
            assert not done, "the reload went ahead while a reserve held the bank"
            assert old_runtime.lending.stopped
        finally:
            slow.go_on.set()
        booking = await during
        assert await reload
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is not old_runtime
    for number, made in ((1, before), (2, booking)):
        assert loan_state(hass, NORTH, number) == "reserved", number
        assert reservation_shown(hass, NORTH, number) == made["reservation_id"], number
    result = await call(hass, "release_code", device_id=device_id, code=booking["code"])
    assert result == {"compartment": 2}


# -- 6. a failing publish ----------------------------------------------------------------------


async def test_a_failing_publish_is_counted_and_logged_without_the_code(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    caplog: pytest.LogCaptureFixture,
    north: tuple[MockConfigEntry, str],
) -> None:
    """Reverted (publish task unguarded): the HomeAssistantError escapes the task into Home
    Assistant's loop (the hass fixture fails the test), nothing is counted or warned.
    """
    entry, device_id = north
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    caplog.clear()
    mqtt_mock.async_publish.side_effect = HomeAssistantError("broker gone")
    try:
        with caplog.at_level(logging.WARNING):
            # The UNLOCK did not leave: the call fails, the code is not used up.
            await refused(
                hass,
                "locker_bank_unreachable",
                "release_code",
                device_id=device_id,
                code=booking["code"],
            )
            await hass.async_block_till_done()
    finally:
        mqtt_mock.async_publish.side_effect = None
    assert entry.runtime_data.lending.command_errors == 2  # the UNLOCK and the LOCK after it
    assert (await keypad_state(hass, entry, "Locker North"))["failures"] == 0
    result = await call(hass, "release_code", device_id=device_id, code=booking["code"])
    assert result == {"compartment": 1}
    ours = [r for r in caplog.records if r.name.startswith("custom_components.city_ops")]
    warnings = [r.getMessage() for r in ours if r.levelno == logging.WARNING]
    assert any(NORTH_1 in m and "broker gone" in m for m in warnings), warnings
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    for code in (booking["code"], booking["return_code"]):
        assert code not in caplog.text


# -- 7. a restart during a pickup --------------------------------------------------------------


async def test_an_unlock_under_way_gets_its_time_again_after_a_restart(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
    north: tuple[MockConfigEntry, str],
) -> None:
    """Reverted (no resume): 5 min down plus 30 s puts the restored unlock past its 90 s; the
    first 10 s lending tick sends LOCK and hands the used pickup code back, the pickup is
    not counted (state stays reserved) and the code opens the compartment a second time.
    """
    entry, device_id = north
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    mqtt_mock.async_publish.reset_mock()
    assert await call(hass, "release_code", device_id=device_id, code=booking["code"]) == {
        "compartment": 1
    }
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == [(NORTH_1, UNLOCK)]

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    freezer.tick(timedelta(minutes=5))
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    mqtt_mock.async_publish.reset_mock()
    # The lending tick runs every 10 s; 30 s after the restart the unlock is still young.
    freezer.tick(timedelta(seconds=30))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == []

    report(hass, NORTH, 1, door="open", locked=False, item_present=False)
    await hass.async_block_till_done()
    assert loan_state(hass, NORTH, 1) == "on_loan"
    # Used a few minutes ago: recognised, not counted, opens nothing.
    await refused(
        hass, "locker_code_already_used", "release_code", device_id=device_id, code=booking["code"]
    )
    assert unlocks(mqtt_mock) == []


# -- 8. facts announced after they are stored ------------------------------------------------


async def test_collection_and_return_are_announced_after_they_are_stored(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    hass_storage: dict[str, Any],
    north: tuple[MockConfigEntry, str],
) -> None:
    """Reverted (events fired before the save task): the listener finds the stored loan
    without `collected_at`, and the stored compartment still holding the returned loan.
    """
    entry, device_id = north
    asset_id = bank_asset(entry, "Locker North")
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    await call(hass, "release_code", device_id=device_id, code=booking["code"])
    await hass.async_block_till_done()
    seen: list[tuple[str, Any]] = []

    @callback
    def collected(event: Event[Any]) -> None:
        loan = stored_banks(hass_storage, entry)[asset_id]["compartments"]["1"]["loan"]
        seen.append(("collected", (event.data["reservation_id"], loan)))

    @callback
    def returned(event: Event[Any]) -> None:
        bank = stored_banks(hass_storage, entry)[asset_id]
        seen.append(("returned", (bank["compartments"]["1"]["loan"], bank["history"][-1])))

    hass.bus.async_listen("city_ops_locker_collected", collected)
    hass.bus.async_listen("city_ops_locker_returned", returned)
    report(hass, NORTH, 1, door="open", locked=False)
    report(hass, NORTH, 1, item_present=False)
    await hass.async_block_till_done()
    assert [kind for kind, _ in seen] == ["collected"]
    event_id, loan = seen[0][1]
    assert event_id == booking["reservation_id"] == loan["reservation_id"]
    assert loan["collected_at"] is not None

    report(hass, NORTH, 1, door="closed", locked=True)
    await hass.async_block_till_done()
    await call(hass, "release_code", device_id=device_id, code=booking["return_code"])
    report(hass, NORTH, 1, door="open", locked=False)
    report(hass, NORTH, 1, item_present=True)
    await hass.async_block_till_done()
    assert [kind for kind, _ in seen] == ["collected", "returned"]
    stored_loan, last = seen[1][1]
    assert stored_loan is None
    assert (last["reservation_id"], last["outcome"]) == (booking["reservation_id"], "returned")


# -- 9. only a door opened by a code resets the wrong-entry count ----------------------------


async def test_guessing_around_an_own_code_without_opening_locks_the_keypad(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, north: tuple[MockConfigEntry, str]
) -> None:
    """Reverted (accepting a code resets the count): after the valid code the count is 0, the
    fourth wrong code is the first of a new run, and the keypad stays open to guessing.
    """
    entry, device_id = north
    events = record_events(hass)
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    bad = wrong(booking["code"], booking["return_code"])
    for _ in range(3):
        await refused(hass, "locker_code_refused", "release_code", device_id=device_id, code=bad)
    assert await call(hass, "release_code", device_id=device_id, code=booking["code"]) == {
        "compartment": 1
    }
    assert (await keypad_state(hass, entry, "Locker North"))["failures"] == 3
    # The door never opens; one more guess is the fourth in a row: the keypad waits.
    await refused(hass, "locker_code_refused", "release_code", device_id=device_id, code=bad)
    await hass.async_block_till_done()
    assert event_kinds(events)[-1] == "code_refused"
    assert (await keypad_state(hass, entry, "Locker North"))["locked_until"] is not None
    await refused(hass, "locker_keypad_locked", "release_code", device_id=device_id, code=bad)


async def test_a_door_opened_by_a_code_resets_the_wrong_entry_count(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, north: tuple[MockConfigEntry, str]
) -> None:
    """Reverted (the reset moved away but not to the opened door): 3 + 1 wrong codes in a
    row make the keypad wait although the borrower's own code really opened a door between them.
    """
    entry, device_id = north
    events = record_events(hass)
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    bad = wrong(booking["code"], booking["return_code"])
    for _ in range(3):
        await refused(hass, "locker_code_refused", "release_code", device_id=device_id, code=bad)
    await call(hass, "release_code", device_id=device_id, code=booking["code"])
    report(hass, NORTH, 1, door="open", locked=False)
    await hass.async_block_till_done()
    assert (await keypad_state(hass, entry, "Locker North"))["failures"] == 0
    await refused(hass, "locker_code_refused", "release_code", device_id=device_id, code=bad)
    await hass.async_block_till_done()
    keypad = await keypad_state(hass, entry, "Locker North")
    assert (keypad["failures"], keypad["locked_until"]) == (1, None)
    assert "keypad_locked" not in event_kinds(events)
