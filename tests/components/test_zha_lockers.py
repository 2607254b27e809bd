"""Locker banks through ZHA on our fake zigpy radio: DoorLock and item sensors per endpoint in,
lock_door / unlock_door out, the lock's keypad events in (real zigpy frames both ways)."""

from __future__ import annotations

import logging
from typing import Any

from homeassistant.core import HomeAssistant
import pytest
from zigpy.exceptions import DeliveryError
from zigpy.zcl import foundation
from zigpy.zcl.clusters.closures import DoorLock
from zigpy.zcl.clusters.general import Basic, LevelControl, OnOff
from zigpy.zcl.clusters.measurement import OccupancySensing

from custom_components.city_ops.sources.reading import CompartmentReading, KeypadEntry, Reading
from custom_components.city_ops.sources.zha import ZhaCommandError, ZhaDevices, ZhaReading

# The fixtures (setup_zha, make_zigpy_device, ...) until tests/components/conftest.py imports them.
from .zha_fixtures import *  # noqa: F403
from .zha_fixtures import MakeZigpyDevice, ZhaNetwork, locker_bank_endpoints

BANK = "00:0d:6f:00:0c:10:00:01"
PIR = "00:15:8d:00:04:5c:1e:23"
LUMINAIRE = "00:0d:6f:00:0a:90:69:e8"
UNKNOWN = "00:0d:6f:ff:ff:ff:ff:02"

Op = DoorLock.OperationEvent
Source = DoorLock.OperationEventSource


class Collector:
    """on_reading that keeps what it was given."""

    def __init__(self) -> None:
        self.readings: list[ZhaReading] = []

    def __call__(self, reading: ZhaReading) -> None:
        self.readings.append(reading)

    def take(self) -> list[ZhaReading]:
        taken, self.readings = self.readings, []
        return taken


@pytest.fixture
async def site(
    hass: HomeAssistant, setup_zha: ZhaNetwork, make_zigpy_device: MakeZigpyDevice
) -> ZhaNetwork:
    """A bank of two compartments (endpoints 1 and 2), a mast's PIR and a luminaire."""
    await make_zigpy_device(BANK, locker_bank_endpoints(1, 2), model="Locker bank")
    await make_zigpy_device(
        PIR, {1: {"in": [OccupancySensing], "device_type": 0x0107}}, mains_powered=False
    )
    await make_zigpy_device(
        LUMINAIRE, {1: {"in": [Basic, OnOff, LevelControl], "device_type": 0x0101}}
    )
    return setup_zha


@pytest.fixture
async def started(hass: HomeAssistant, site: ZhaNetwork) -> tuple[ZhaDevices, Collector]:
    collector = Collector()
    devices = ZhaDevices(hass, collector)
    # The runtime names every ZHA device in `ieees`; `lockers` says which ones are banks.
    assert devices.async_start([PIR, LUMINAIRE, BANK], lockers=[BANK]) == []
    collector.take()
    return devices, collector


def _bank(site: ZhaNetwork) -> Any:
    return site.devices[BANK]


# -- reports in ----------------------------------------------------------------------------------

# (endpoint, cluster, attributes of one frame, expected CompartmentReading fields)
REPORTS: list[tuple[int, Any, dict[str | int, Any], dict[str, Any]]] = [
    (1, DoorLock, {"lock_state": DoorLock.LockState.Locked}, {"locked": True}),
    (1, DoorLock, {"lock_state": DoorLock.LockState.Unlocked}, {"locked": False}),
    (2, DoorLock, {"lock_state": DoorLock.LockState.Not_fully_locked}, {"locked": False}),
    (2, DoorLock, {"door_state": DoorLock.DoorState.Open}, {"door_open": True}),
    (1, DoorLock, {"door_state": DoorLock.DoorState.Closed}, {"door_open": False}),
    (1, DoorLock, {"door_state": DoorLock.DoorState.Error_forced_open}, {"door_open": True}),
    (2, OccupancySensing, {"occupancy": 1}, {"item_present": True}),
    (1, OccupancySensing, {"occupancy": 0}, {"item_present": False}),
    (1, OccupancySensing, {"occupancy": 0b11}, {"item_present": True}),  # reserved bits ignored
]


async def test_bank_reports_become_compartment_readings(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    _, collector = started
    for endpoint_id, cluster, attributes, expected in REPORTS:
        site.app.report(_bank(site), endpoint_id, cluster.cluster_id, attributes)
        assert collector.take() == [
            CompartmentReading(device=BANK, compartment=endpoint_id, **expected)
        ], (endpoint_id, attributes)


async def test_one_frame_with_lock_and_door_state(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    _, collector = started
    site.app.report(
        _bank(site),
        2,
        DoorLock.cluster_id,
        {"lock_state": DoorLock.LockState.Unlocked, "door_state": DoorLock.DoorState.Open},
    )
    assert collector.take() == [
        CompartmentReading(device=BANK, compartment=2, locked=False),
        CompartmentReading(device=BANK, compartment=2, door_open=True),
    ]


# (cluster, attributes, the field rejected)
UNUSABLE: list[tuple[Any, dict[str | int, Any], str]] = [
    (DoorLock, {"lock_state": DoorLock.LockState.Undefined}, "door_lock.lock_state"),
    (DoorLock, {"lock_state": 7}, "door_lock.lock_state"),
    (DoorLock, {"door_state": DoorLock.DoorState.Error_jammed}, "door_lock.door_state"),
    (DoorLock, {"door_state": DoorLock.DoorState.Error_unspecified}, "door_lock.door_state"),
    (DoorLock, {"door_state": DoorLock.DoorState.Undefined}, "door_lock.door_state"),
]


async def test_unusable_lock_and_door_states_are_rejected(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    _, collector = started
    for cluster, attributes, field in UNUSABLE:
        site.app.report(_bank(site), 1, cluster.cluster_id, attributes)
        assert collector.take() == [
            CompartmentReading(device=BANK, compartment=1, rejected=(field,))
        ], attributes


async def test_garbage_from_quirks_is_rejected_not_raised(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    _, collector = started
    garbage = [
        (DoorLock, "lock_state", True, "door_lock.lock_state"),
        (DoorLock, "lock_state", "locked", "door_lock.lock_state"),
        (DoorLock, "door_state", 0.0, "door_lock.door_state"),
        (OccupancySensing, "occupancy", "present", "occupancy.occupancy"),
        (OccupancySensing, "occupancy", 256, "occupancy.occupancy"),
    ]
    for cluster, attribute, value, field in garbage:
        _bank(site).endpoints[2].in_clusters[cluster.cluster_id].update_attribute(
            cluster.find_attribute(attribute).id, value
        )
        assert collector.take() == [
            CompartmentReading(device=BANK, compartment=2, rejected=(field,))
        ], (attribute, value)


async def test_unused_attributes_and_clusters_of_a_bank_give_nothing(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    _, collector = started
    bank = _bank(site)
    site.app.report(bank, 1, DoorLock.cluster_id, {"lock_type": DoorLock.LockType.Magnetic})
    site.app.report(bank, 1, DoorLock.cluster_id, {"door_open_events": 12})
    site.app.report(bank, 1, Basic.cluster_id, {"sw_build_id": "1.0"})
    assert collector.take() == []


async def test_mast_occupancy_stays_motion(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    """OccupancySensing means motion on a mast and an item in the compartment on a bank."""
    _, collector = started
    site.app.report(site.devices[PIR], 1, OccupancySensing.cluster_id, {"occupancy": 1})
    site.app.report(_bank(site), 1, OccupancySensing.cluster_id, {"occupancy": 1})
    site.app.report(site.devices[LUMINAIRE], 1, OnOff.cluster_id, {"on_off": True})
    assert collector.take() == [
        Reading(device=PIR, occupancy=True),
        CompartmentReading(device=BANK, compartment=1, item_present=True),
        Reading(device=LUMINAIRE, on=True),
    ]


async def test_a_bank_not_named_as_locker_is_read_as_before(
    hass: HomeAssistant, site: ZhaNetwork
) -> None:
    collector = Collector()
    devices = ZhaDevices(hass, collector)
    assert devices.async_start([BANK]) == []
    site.app.report(_bank(site), 2, OccupancySensing.cluster_id, {"occupancy": 1})
    site.app.report(_bank(site), 2, DoorLock.cluster_id, {"lock_state": 1})
    assert collector.take() == [Reading(device=BANK, occupancy=True)]
    devices.async_stop()


async def test_only_endpoints_1_to_64_are_compartments(
    hass: HomeAssistant, site: ZhaNetwork, make_zigpy_device: MakeZigpyDevice
) -> None:
    big = await make_zigpy_device(UNKNOWN, locker_bank_endpoints(64, 65), model="Big bank")
    collector = Collector()
    devices = ZhaDevices(hass, collector)
    assert devices.async_start([], lockers=[UNKNOWN.upper()]) == []
    site.app.report(big, 64, DoorLock.cluster_id, {"lock_state": 1})
    site.app.report(big, 65, DoorLock.cluster_id, {"lock_state": 1})
    site.app.report(big, 65, OccupancySensing.cluster_id, {"occupancy": 1})
    assert collector.take() == [CompartmentReading(device=UNKNOWN, compartment=64, locked=True)]
    devices.async_stop()


async def test_start_reports_missing_banks_once(hass: HomeAssistant, site: ZhaNetwork) -> None:
    devices = ZhaDevices(hass, Collector())
    missing = devices.async_start([PIR, UNKNOWN], lockers=[UNKNOWN, BANK, "bank 3"])
    assert missing == [UNKNOWN, "bank 3"]
    devices.async_stop()


async def test_a_bank_joining_later_is_picked_up(
    hass: HomeAssistant, site: ZhaNetwork, make_zigpy_device: MakeZigpyDevice
) -> None:
    collector = Collector()
    devices = ZhaDevices(hass, collector)
    assert devices.async_start([], lockers=[UNKNOWN]) == [UNKNOWN]
    late = await make_zigpy_device(UNKNOWN, locker_bank_endpoints(3))
    collector.take()  # ZHA's reads at join
    site.app.report(late, 3, DoorLock.cluster_id, {"door_state": 0})
    assert collector.take() == [CompartmentReading(device=UNKNOWN, compartment=3, door_open=True)]
    devices.async_stop()


async def test_stop_removes_the_bank_listeners(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    devices, collector = started
    bank = _bank(site)
    devices.async_stop()
    site.app.report(bank, 1, DoorLock.cluster_id, {"lock_state": 1})
    site.app.report(bank, 2, OccupancySensing.cluster_id, {"occupancy": 1})
    site.app.device_command(
        bank,
        1,
        DoorLock.cluster_id,
        "operation_event_notification",
        operation_event_source=Source.Keypad,
        operation_event_code=Op.UnlockFailureInvalidPINorID,
        user_id=0,
        pin="123456",
        local_time=0,
    )
    assert collector.take() == []


# -- keypad events in ----------------------------------------------------------------------------


def _keypad_event(
    site: ZhaNetwork,
    pin: str,
    *,
    source: Any = Source.Keypad,
    event: Any = Op.UnlockFailureInvalidPINorID,
    endpoint_id: int = 1,
) -> None:
    site.app.device_command(
        _bank(site),
        endpoint_id,
        DoorLock.cluster_id,
        "operation_event_notification",
        operation_event_source=source,
        operation_event_code=event,
        user_id=0xFFFF,
        pin=pin,
        local_time=0,
    )


async def test_keypad_unlock_attempts_become_keypad_entries(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    _, collector = started
    for event in (Op.UnlockFailureInvalidPINorID, Op.Unlock, Op.UnknownOrMfgSpecific):
        _keypad_event(site, "004711", event=event)
        assert collector.take() == [KeypadEntry(device=BANK, code="004711")], event
    _keypad_event(site, "123456789012", endpoint_id=2)  # the keypad belongs to the bank
    (entry,) = collector.take()
    assert entry == KeypadEntry(device=BANK, code="123456789012")
    assert isinstance(entry, KeypadEntry)
    assert type(entry.code) is str  # not zigpy's CharacterString


async def test_other_lock_events_and_bad_pins_give_nothing(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector], caplog: pytest.LogCaptureFixture
) -> None:
    _, collector = started
    caplog.set_level(logging.DEBUG, logger="custom_components.city_ops")
    _keypad_event(site, "004711", source=Source.RF)
    _keypad_event(site, "004711", source=Source.Manual, event=Op.Unlock)
    _keypad_event(site, "004711", event=Op.Lock)
    _keypad_event(site, "004711", event=Op.AutoLock)
    for pin in ("", "918", "9182739182739", "91827a", "٩١٨٢٧٣"):
        _keypad_event(site, pin)
    assert collector.take() == []
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("custom_components")]
    assert any("Keypad entry" in message for message in ours)
    for message in ours:
        for part in ("918", "827", "273", "٩١٨"):
            assert part not in message, message


async def test_a_failing_consumer_of_keypad_entries_does_not_break_zigpy(
    hass: HomeAssistant, site: ZhaNetwork, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(reading: ZhaReading) -> None:
        raise RuntimeError("bug in the consumer")

    devices = ZhaDevices(hass, explode)
    devices.async_start([], lockers=[BANK])
    _keypad_event(site, "004711")
    site.app.report(_bank(site), 1, DoorLock.cluster_id, {"lock_state": 1})
    await hass.async_block_till_done()
    assert "Unexpected error handling a ZHA keypad event of" in caplog.text
    assert "Unexpected error handling a ZHA attribute of" in caplog.text
    assert _bank(site).endpoints[1].door_lock.get("lock_state") == 1
    devices.async_stop()


# -- commands out --------------------------------------------------------------------------------


async def test_set_locked_sends_lock_and_unlock_to_the_compartment(
    hass: HomeAssistant, site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    devices, collector = started
    for compartment, locked, command, lock_state in (
        (2, False, "unlock_door", False),
        (1, False, "unlock_door", False),
        (2, True, "lock_door", True),
    ):
        site.app.sent.clear()
        await devices.async_set_locked(BANK.replace(":", ""), compartment, locked)
        (sent,) = site.app.commands()
        assert (sent.ieee, sent.endpoint_id, sent.cluster_id, sent.general, sent.command) == (
            BANK,
            compartment,
            DoorLock.cluster_id,
            False,
            command,
        )
        assert sent.args.get("pin_code") is None  # no PIN: the bank holds no codes
        await hass.async_block_till_done()
        # The lock confirms with a lock_state report, which is the state we act on.
        assert collector.take() == [
            CompartmentReading(device=BANK, compartment=compartment, locked=lock_state)
        ]


async def test_set_locked_on_unknown_or_unsuitable_devices(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    devices, _ = started
    site.app.sent.clear()
    cases: list[tuple[str, Any, str]] = [
        (UNKNOWN, 1, "unknown_device"),
        (LUMINAIRE, 1, "no_door_lock"),
        (PIR, 1, "no_door_lock"),
        (BANK, 3, "no_door_lock"),  # no such endpoint
        ("bank", 1, "invalid_ieee"),
        (BANK, 0, "invalid_compartment"),
        (BANK, 65, "invalid_compartment"),
        (BANK, True, "invalid_compartment"),
        (BANK, "1", "invalid_compartment"),
        (BANK, 1.0, "invalid_compartment"),
    ]
    for ieee, compartment, reason in cases:
        with pytest.raises(ZhaCommandError) as err:
            await devices.async_set_locked(ieee, compartment, False)
        assert err.value.reason == reason, (ieee, compartment)
    assert site.app.commands() == []


async def test_set_locked_refused_by_the_lock(
    hass: HomeAssistant, site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    devices, collector = started
    for status in (foundation.Status.FAILURE, foundation.Status.NOT_AUTHORIZED):
        site.app.command_status = status
        with pytest.raises(ZhaCommandError) as err:
            await devices.async_set_locked(BANK, 1, False)
        assert err.value.reason == "rejected"
        assert status.name in str(err.value)
    await hass.async_block_till_done()
    assert collector.take() == []  # a refusing lock reports no new state


async def test_set_locked_delivery_failures(
    site: ZhaNetwork, started: tuple[ZhaDevices, Collector]
) -> None:
    devices, _ = started
    for failure, reason in (
        (DeliveryError("no ACK from the bank"), "delivery_failed"),
        (TimeoutError(), "timeout"),
    ):
        site.app.send_error = failure
        with pytest.raises(ZhaCommandError) as err:
            await devices.async_set_locked(BANK, 2, True)
        assert err.value.reason == reason
        assert isinstance(err.value.__cause__, type(failure))


async def test_set_locked_without_zha(hass: HomeAssistant) -> None:
    devices = ZhaDevices(hass, Collector())
    assert devices.async_start([], lockers=[BANK]) == [BANK]
    with pytest.raises(ZhaCommandError) as err:
        await devices.async_set_locked(BANK, 1, False)
    assert err.value.reason == "zha_unavailable"
