"""A locker bank reached through ZHA, through the whole integration: a city_ops site with a
`locker_bank` subentry bound to a zigpy DoorLock device (compartment n = endpoint n) on our
fake radio, real ZHA and real zigpy. Reports in, keypad PINs in, lock_door / unlock_door out."""

from __future__ import annotations

import logging
from typing import Any

from homeassistant.components.lock import LockState
from homeassistant.const import STATE_ON
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient
import zigpy.device
from zigpy.zcl import foundation
from zigpy.zcl.clusters.closures import DoorLock
from zigpy.zcl.clusters.measurement import OccupancySensing

from custom_components.city_ops.const import DOMAIN, TOPIC_DEFAULTS_DATA

from .conftest import locker_bank

# The fixtures (setup_zha, make_zigpy_device, ...) until tests/components/conftest.py imports them.
from .zha_fixtures import *  # noqa: F403
from .zha_fixtures import MakeZigpyDevice, SentCommand, ZhaNetwork, locker_bank_endpoints

# What these tests check is shown by entities that are disabled by default, too.
pytestmark = pytest.mark.usefixtures("every_entity_enabled")

BANK_IEEE = "00:0d:6f:00:0c:10:00:07"
DISABLED = (er.RegistryEntryDisabler.INTEGRATION, None)  # disabled, no state
BANK = "Locker Nord"  # entity ids: lock.locker_nord_compartment_1, ...
PREFIX = "locker_nord"

Op = DoorLock.OperationEvent
Source = DoorLock.OperationEventSource


@pytest.fixture
def site_entry() -> MockConfigEntry:
    """The site: one bank reached through ZHA, a walker in 1 and a hand cart in 2."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Stadtpark",
        data={"name": "Stadtpark", **TOPIC_DEFAULTS_DATA},
        options={"full_threshold": 80, "due_horizon_h": 24},
        subentries_data=[
            locker_bank(
                BANK,
                BANK_IEEE,
                ("Walker", "walker"),
                ("Hand cart", "hand_cart"),
                source_kind="zha",
            )
        ],
    )


async def _join_bank(make_zigpy_device: MakeZigpyDevice) -> zigpy.device.Device:
    return await make_zigpy_device(BANK_IEEE, locker_bank_endpoints(1, 2), model="Locker bank")


async def _setup_site(hass: HomeAssistant, site_entry: MockConfigEntry) -> MockConfigEntry:
    site_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(site_entry.entry_id)
    await hass.async_block_till_done()
    return site_entry


@pytest.fixture
async def bank(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_zha: ZhaNetwork,
    make_zigpy_device: MakeZigpyDevice,
    site_entry: MockConfigEntry,
) -> zigpy.device.Device:
    """The bank joined to ZHA first (as an installer pairs it), then the site set up."""
    device = await _join_bank(make_zigpy_device)
    await _setup_site(hass, site_entry)
    return device


def _report(
    network: ZhaNetwork,
    device: zigpy.device.Device,
    compartment: int,
    *,
    door: DoorLock.DoorState | None = None,
    lock: DoorLock.LockState | None = None,
    occupancy: int | None = None,
) -> None:
    """The bank reports one compartment's state as ZCL Report_Attributes frames."""
    if door is not None:
        network.app.report(device, compartment, DoorLock.cluster_id, {"door_state": door})
    if lock is not None:
        network.app.report(device, compartment, DoorLock.cluster_id, {"lock_state": lock})
    if occupancy is not None:
        network.app.report(
            device, compartment, OccupancySensing.cluster_id, {"occupancy": occupancy}
        )


async def _closed_locked_full(
    hass: HomeAssistant, network: ZhaNetwork, device: zigpy.device.Device, *compartments: int
) -> None:
    for number in compartments:
        _report(
            network,
            device,
            number,
            door=DoorLock.DoorState.Closed,
            lock=DoorLock.LockState.Locked,
            occupancy=1,
        )
    await hass.async_block_till_done()


def _keypad(network: ZhaNetwork, device: zigpy.device.Device, pin: str) -> None:
    """Somebody types a PIN on the bank's keypad: the lock refuses it (it holds no codes)."""
    network.app.device_command(
        device,
        1,
        DoorLock.cluster_id,
        "operation_event_notification",
        operation_event_source=Source.Keypad,
        operation_event_code=Op.UnlockFailureInvalidPINorID,
        user_id=0xFFFF,
        pin=pin,
        local_time=0,
    )


def _lock_commands(network: ZhaNetwork) -> list[tuple[int, str]]:
    """(endpoint, command) of every DoorLock cluster command sent to the bank so far."""
    return [
        (sent.endpoint_id, sent.command)
        for sent in network.app.commands(DoorLock.cluster_id)
        if _to_bank(sent) and not sent.general
    ]


def _to_bank(sent: SentCommand) -> bool:
    return sent.ieee == BANK_IEEE


def _bank_device_id(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, next(iter(entry.subentries))), entry.entry_id
    )
    assert device is not None
    return device.id


def _zha_locks(hass: HomeAssistant) -> list[er.RegistryEntry]:
    """ZHA's own lock entities of the bank's ZHA device."""
    (device,) = dr.async_get(hass).async_get_devices(identifiers={("zha", BANK_IEEE)})
    return [
        entity
        for entity in er.async_entries_for_device(
            er.async_get(hass), device.id, include_disabled_entities=True
        )
        if entity.platform == "zha" and entity.domain == "lock"
    ]


def _locker_events(hass: HomeAssistant) -> list[Event[Any]]:
    events: list[Event[Any]] = []
    hass.bus.async_listen(
        "*",
        lambda event: (
            events.append(event) if event.event_type.startswith("city_ops_locker_") else None
        ),
    )
    return events


async def _reserve(hass: HomeAssistant, entry: MockConfigEntry, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN,
        "reserve",
        {"device_id": _bank_device_id(hass, entry), "borrower": "b-1", **data},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


# -- 1: reports in -------------------------------------------------------------------------------


async def test_reports_from_the_bank_show_on_the_compartment_entities(
    hass: HomeAssistant, setup_zha: ZhaNetwork, bank: zigpy.device.Device
) -> None:
    await _closed_locked_full(hass, setup_zha, bank, 1)
    assert hass.states.get(f"lock.{PREFIX}_compartment_1").state == LockState.LOCKED
    assert hass.states.get(f"binary_sensor.{PREFIX}_compartment_1_item").state == STATE_ON
    assert hass.states.get(f"binary_sensor.{PREFIX}_compartment_1_door").state == "off"
    # Compartment 2 heard nothing: endpoint 1's reports are compartment 1's alone.
    assert hass.states.get(f"binary_sensor.{PREFIX}_compartment_2_item").state == "unknown"
    runtime = hass.config_entries.async_entries(DOMAIN)[0].runtime_data
    assert runtime.stats.unknown_devices == 0


# -- 2: reserve, keypad, collect -----------------------------------------------------------------


async def test_reserve_then_keypad_pin_unlocks_only_the_reserved_compartment(
    hass: HomeAssistant,
    setup_zha: ZhaNetwork,
    bank: zigpy.device.Device,
    site_entry: MockConfigEntry,
) -> None:
    events = _locker_events(hass)
    await _closed_locked_full(hass, setup_zha, bank, 1, 2)
    response = await _reserve(hass, site_entry, item_type="hand_cart")
    number = response["compartment"]
    assert number == 2
    other = 1
    code = response["code"]
    assert hass.states.get(f"sensor.{PREFIX}_compartment_{number}_loan_state").state == "reserved"
    setup_zha.app.sent.clear()

    # The keypad sits on endpoint 1, the hand cart behind endpoint 2: the bank's PIN opens
    # the compartment it was issued for.
    _keypad(setup_zha, bank, code)
    await hass.async_block_till_done()
    assert _lock_commands(setup_zha) == [(number, "unlock_door")]
    assert all(sent.endpoint_id != other for sent in setup_zha.app.commands(DoorLock.cluster_id))
    (unlock,) = [c for c in setup_zha.app.commands(DoorLock.cluster_id) if not c.general]
    assert unlock.args.get("pin_code") is None  # the PIN never goes back to the lock
    # The lock confirmed with its lock_state: the compartment shows unlocked.
    assert hass.states.get(f"lock.{PREFIX}_compartment_{number}").state == LockState.UNLOCKED
    assert hass.states.get(f"lock.{PREFIX}_compartment_{other}").state == LockState.LOCKED

    _report(setup_zha, bank, number, door=DoorLock.DoorState.Open, occupancy=0)
    await hass.async_block_till_done()
    assert hass.states.get(f"sensor.{PREFIX}_compartment_{number}_loan_state").state == "on_loan"
    assert hass.states.get(f"sensor.{PREFIX}_compartment_{other}_loan_state").state == "available"
    assert _lock_commands(setup_zha) == [(number, "unlock_door")]

    _report(setup_zha, bank, number, door=DoorLock.DoorState.Closed)
    await hass.async_block_till_done()
    assert _lock_commands(setup_zha) == [(number, "unlock_door"), (number, "lock_door")]
    assert hass.states.get(f"lock.{PREFIX}_compartment_{number}").state == LockState.LOCKED
    assert [event.event_type for event in events] == [
        "city_ops_locker_reserved",
        "city_ops_locker_released",
        "city_ops_locker_collected",
    ]
    for event in events:
        assert code not in repr(event.data)
    runtime = site_entry.runtime_data
    assert runtime.lending.codes_accepted == 1
    assert runtime.lending.command_errors == 0


# -- 3: a wrong PIN ------------------------------------------------------------------------------


async def test_a_wrong_pin_sends_nothing_and_is_evented(
    hass: HomeAssistant,
    setup_zha: ZhaNetwork,
    bank: zigpy.device.Device,
    site_entry: MockConfigEntry,
) -> None:
    await _closed_locked_full(hass, setup_zha, bank, 1, 2)
    code = (await _reserve(hass, site_entry, compartment=1))["code"]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    events = _locker_events(hass)
    setup_zha.app.sent.clear()

    _keypad(setup_zha, bank, wrong)
    await hass.async_block_till_done()
    assert _lock_commands(setup_zha) == []
    assert [event.event_type for event in events] == ["city_ops_locker_code_refused"]
    (refused,) = events
    assert refused.data["bank"] == BANK
    assert refused.data["bank_device_id"] == _bank_device_id(hass, site_entry)
    assert refused.data["failures"] == 1
    assert wrong not in repr(refused.data)
    assert hass.states.get(f"sensor.{PREFIX}_compartment_1_loan_state").state == "reserved"
    assert site_entry.runtime_data.lending.codes_refused == 1


# -- 4: ZHA's own lock entities ------------------------------------------------------------------


async def test_zha_lock_entities_of_the_bank_are_disabled(
    hass: HomeAssistant, bank: zigpy.device.Device, caplog: pytest.LogCaptureFixture
) -> None:
    """Order: ZHA up, bank joined (ZHA creates its locks), then the site set up."""
    locks = _zha_locks(hass)
    assert locks, "ZHA created no lock entity for the bank's DoorLock endpoints"
    for entity in locks:
        assert entity.disabled_by is er.RegistryEntryDisabler.INTEGRATION, entity.entity_id
        assert hass.states.get(entity.entity_id) is None, entity.entity_id
    setup_log = [record.getMessage() for record in caplog.get_records("setup")]
    for entity in locks:
        assert any(f"Disabled {entity.entity_id}:" in message for message in setup_log)
    # Our own compartment locks stay.
    assert hass.states.get(f"lock.{PREFIX}_compartment_1") is not None


def _zha_lock_registry(hass: HomeAssistant) -> dict[str, tuple[Any, str | None]]:
    """ZHA's lock entities of the bank: (disabled_by, state; None when not in the state machine)."""
    result: dict[str, tuple[Any, str | None]] = {}
    for entity in _zha_locks(hass):
        state = hass.states.get(entity.entity_id)
        result[entity.entity_id] = (entity.disabled_by, state.state if state else None)
    return result


async def test_zha_lock_entities_of_a_bank_paired_after_the_site_are_disabled(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_zha: ZhaNetwork,
    make_zigpy_device: MakeZigpyDevice,
    site_entry: MockConfigEntry,
) -> None:
    """Order: ZHA up, the site set up with the bank's IEEE, then the bank pairs with ZHA.

    The locker_bank flow does not require the device to be in ZHA yet, so an operator may well
    enter the bank before pairing it. ZhaDevices follows the late join (device_initialized),
    but ZHA's lock entities created by that join must end up disabled as well: until then any
    user's lock.unlock on them sends unlock_door without a code.
    """
    await _setup_site(hass, site_entry)
    device = await _join_bank(make_zigpy_device)
    # Reports do reach the late bank (ZhaDevices re-attached on device_initialized) ...
    await _closed_locked_full(hass, setup_zha, device, 1, 2)
    assert hass.states.get(f"lock.{PREFIX}_compartment_1").state == LockState.LOCKED
    # ... and ZHA's locks, created by the join after our setup, must be disabled too.
    locks = _zha_lock_registry(hass)
    assert len(locks) == 2
    assert locks == dict.fromkeys(locks, DISABLED)


@pytest.fixture
async def site_before_zha(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, site_entry: MockConfigEntry
) -> MockConfigEntry:
    """The site set up while ZHA is not (yet) loaded, e.g. its radio not ready at start."""
    assert "zha" not in hass.config.components, "fixture order: the site must come first"
    return await _setup_site(hass, site_entry)


async def test_zha_loading_after_the_site_still_serves_the_bank(
    hass: HomeAssistant,
    site_before_zha: MockConfigEntry,
    setup_zha: ZhaNetwork,
    make_zigpy_device: MakeZigpyDevice,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Order: the site (no ZHA), then ZHA's entry loads, then the bank joins.

    `after_dependencies: [zha]` only orders component set-up; a ZHA entry that retries
    (ConfigEntryNotReady while the stick is not ready) loads after the site. The site must
    then still hear the bank and still disable ZHA's locks.
    """
    setup_log = [record.getMessage() for record in caplog.get_records("setup")]
    assert any("ZHA is not loaded" in message for message in setup_log)
    device = await _join_bank(make_zigpy_device)
    await _closed_locked_full(hass, setup_zha, device, 1)
    lending = site_before_zha.runtime_data.lending
    assert {
        "compartment 1 lock": hass.states.get(f"lock.{PREFIX}_compartment_1").state,
        "lending attached to ZHA": lending.zha is not None,
        "ZHA's locks": _zha_lock_registry(hass),
    } == {
        "compartment 1 lock": LockState.LOCKED,
        "lending attached to ZHA": True,
        "ZHA's locks": dict.fromkeys(_zha_lock_registry(hass), DISABLED),
    }


# -- 5: a lock refusing to unlock ----------------------------------------------------------------


async def test_a_failing_unlock_is_counted_and_logged_not_raised(
    hass: HomeAssistant,
    setup_zha: ZhaNetwork,
    bank: zigpy.device.Device,
    site_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _closed_locked_full(hass, setup_zha, bank, 1, 2)
    code = (await _reserve(hass, site_entry, compartment=1))["code"]
    setup_zha.app.sent.clear()
    caplog.clear()
    # (A radio that cannot deliver makes zigpy retry after real sleeps; delivery failures
    # are covered at source level in test_zha_lockers.py.)
    setup_zha.app.command_status = foundation.Status.FAILURE

    _keypad(setup_zha, bank, code)
    await hass.async_block_till_done()
    # The UNLOCK did not get through: a LOCK follows it, and the code works again.
    assert _lock_commands(setup_zha) == [(1, "unlock_door"), (1, "lock_door")]
    assert site_entry.runtime_data.lending.command_errors == 2
    bank_model = next(iter(site_entry.runtime_data.site.locker_banks.values()))
    assert bank_model.compartments[1].status.loan.pickup_hash is not None
    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and record.name.startswith("custom_components")
    ]
    assert any(
        f"Lock command to {BANK_IEEE} failed: rejected" in message for message in warnings
    ), warnings
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("custom_components")]
    assert not [message for message in ours if code in message]
    # The lock reported nothing new: the compartment still shows locked.
    assert hass.states.get(f"lock.{PREFIX}_compartment_1").state == LockState.LOCKED
    assert setup_zha.app.answer_errors == []
