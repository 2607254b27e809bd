"""The site's locker banks at run time: facts and keypad entries in, commands and events out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
import contextlib
from datetime import datetime, timedelta
from functools import partial
from operator import methodcaller
from typing import TYPE_CHECKING, Any

from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.util import dt as dt_util

from . import delivery
from .const import CONF_NATIVE_BASE, DEFAULT_NATIVE_BASE, DOMAIN, LOGGER
from .model.assets import Asset
from .model.locker import (
    ENTRY_MAX_AGE,
    Compartment,
    CompartmentSpec,
    Loan,
    LockCommand,
    LockerBank,
    LockerBankSpec,
    LockerRefused,
    LockerUpdate,
    Reservation,
    find_match,
    issue_codes,
)
from .sources import native
from .sources.reading import CompartmentReading, KeypadEntry
from .throttled_log import ThrottledLog

if TYPE_CHECKING:
    from .model.site import Site
    from .runtime import CityOpsConfigEntry
    from .sources.zha import ZhaDevices

EVENT_PREFIX = "city_ops_locker_"
# Who booked: for the caller and the events automations act on (only admins may subscribe to
# those), never for state attributes or calendars every user can read.
BOOKING_REFERENCES = frozenset({"reservation_id", "borrower"})


def _warn_unreadable(name: str, problem: str) -> None:
    LOGGER.warning("Ignoring unreadable stored state of %s: %s", name, problem)


def locker_bank_spec(asset: Asset) -> LockerBankSpec:
    """Build the model's spec from a stored asset."""
    params = asset.params
    return LockerBankSpec(
        name=asset.name,
        latitude=asset.latitude,
        longitude=asset.longitude,
        compartments=tuple(
            CompartmentSpec(int(c["number"]), str(c["item"]), str(c["item_type"]))
            for c in params.get("compartments") or ()
        ),
        pickup_window=timedelta(minutes=float(params.get("pickup_window_min", 120))),
        loan_period=timedelta(minutes=float(params.get("loan_period_min", 240))),
        report_interval=(
            timedelta(seconds=int(params["report_interval_s"]))
            if params.get("report_interval_s")
            else None
        ),
    )


class Lending:
    """Reservations, loans, codes and the keypads of every locker bank of a site."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: CityOpsConfigEntry,
        site: Site,
        assets: Mapping[str, Asset],
        *,
        notify: Callable[[str], None],
        save_now: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        """Work on the site's banks; `notify(asset_id)` refreshes that bank's entities."""
        self.hass = hass
        self.entry = entry
        self.site = site
        self.banks = site.locker_banks
        self.assets = assets
        self._notify = notify
        self._save_now = save_now
        self._native_base = entry.data.get(CONF_NATIVE_BASE, DEFAULT_NATIVE_BASE)
        self._bank_locks: dict[str, asyncio.Lock] = {}
        # Bookings of banks removed while they lent something, by controller ("kind:device"):
        # the items are still out, and the bank added again with that controller gets them.
        self.kept: dict[str, dict[str, Any]] = {}
        self.zha: ZhaDevices | None = None
        self.stopped = False
        self.commands_sent = 0
        self.command_errors = 0
        self.codes_accepted = 0
        self.codes_refused = 0
        self.entries_while_locked = 0
        self.codes_repeated = 0
        self.stale_entries = 0
        self.unreachable = 0
        self.log = ThrottledLog(LOGGER)  # a brute-forcer types as often as they like

    # -- state --------------------------------------------------------------------------------

    def restore(self, stored: Mapping[str, Any]) -> None:
        """Bring back bookings, loans, history and keypad lock-outs after a restart."""
        for asset_id, data in (stored.get("locker_banks") or {}).items():
            bank = self.banks.get(asset_id)
            if bank is None or not isinstance(data, Mapping):
                continue
            bank.restore(data, partial(_warn_unreadable, bank.spec.name))
            bank.resume(dt_util.utcnow())
        kept = stored.get("removed_locker_banks")
        if isinstance(kept, Mapping):
            self.kept = {str(k): dict(v) for k, v in kept.items() if isinstance(v, Mapping)}
        for asset_id in list(self.banks):  # added again while the site was being rebuilt
            self.bank_added(asset_id)

    def to_store(self) -> dict[str, Any]:
        """What survives a restart (code hashes only)."""
        return {
            "locker_banks": {asset_id: bank.to_dict() for asset_id, bank in self.banks.items()},
            "removed_locker_banks": self.kept,
        }

    def native_topics(self) -> list[tuple[str, bool]]:
        """Topics of the banks reached over native MQTT, each with whether retained counts."""
        return [topic for asset_id in self.banks for topic in self.topics_of(self.assets[asset_id])]

    def topics_of(self, asset: Asset) -> list[tuple[str, bool]]:
        """One bank's topics over native MQTT (none over ZHA), each with whether retained counts.

        Compartment states may be retained (they are facts that still hold); a retained keypad
        entry is somebody's old code the broker hands out again on every (re)subscription.
        """
        if asset.source_kind != "native":
            return []
        return [
            (native.compartment_state_topic(self._native_base, asset.device), True),
            (native.keypad_topic(self._native_base, asset.device), False),
        ]

    # -- banks added and removed without a site reload ----------------------------------------

    @callback
    def bank_added(self, asset_id: str) -> None:
        """A bank added in place; with the controller of a removed one, it gets its bookings."""
        asset = self.assets[asset_id]
        kept = self.kept.pop(f"{asset.source_kind}:{asset.device}", None)
        if kept is None:
            return
        bank = self.banks[asset_id]
        bank.restore(kept.get("bank") or {}, partial(_warn_unreadable, bank.spec.name))
        bank.resume(dt_util.utcnow())
        ir.async_delete_issue(self.hass, DOMAIN, _kept_issue(asset.source_kind, asset.device))
        LOGGER.info("%s is back with the bookings it had when it was removed", asset.name)

    @callback
    def bank_removed(self, asset_id: str, asset: Asset, bank: LockerBank) -> bool:
        """A bank removed in place; True when it lent something and its bookings are kept.

        Home Assistant offers no way to refuse deleting a subentry, and a city does not
        forget who holds its walkers: the bookings stay with the site (a repair issue names
        them) until a bank with that controller is added again.
        """
        self._bank_locks.pop(asset_id, None)
        loans = bank.active_loans()
        if not loans:
            return False
        key = f"{asset.source_kind}:{asset.device}"
        self.kept[key] = {
            "name": bank.spec.name,
            "removed_at": dt_util.utcnow().isoformat(),
            "bank": bank.to_dict(),
        }
        compartments = ", ".join(
            f"{loan.compartment} ({bank.compartments[loan.compartment].spec.item}, "
            f"{bank.compartments[loan.compartment].state.value})"
            for loan in sorted(loans, key=lambda loan: loan.compartment)
        )
        LOGGER.warning(
            "%s was removed while %d compartments were reserved or lent out (%s); "
            "their bookings are kept until a bank with controller %s is added again",
            bank.spec.name,
            len(loans),
            compartments,
            key,
        )
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            _kept_issue(asset.source_kind, asset.device),
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="locker_bank_removed_with_bookings",
            translation_placeholders={
                "bank": bank.spec.name,
                "count": str(len(loans)),
                "compartments": compartments,
                "device": asset.device,
            },
        )
        return True

    def decode(self, topic: str, payload: bytes | str) -> CompartmentReading | KeypadEntry:
        """Decode a native locker message."""
        return native.decode_locker(self._native_base, topic, payload)

    def device_id(self, asset_id: str) -> str | None:
        """The bank's device in the registry (events name it for automations)."""
        device = dr.async_get(self.hass).async_get_device_by_identifier(
            (DOMAIN, asset_id), self.entry.entry_id
        )
        return device.id if device is not None else None

    # -- facts --------------------------------------------------------------------------------

    @callback
    def handle(self, asset_id: str, reading: CompartmentReading | KeypadEntry) -> None:
        """A compartment fact or a keypad entry from the bank behind `asset_id`."""
        if self.stopped:
            return
        bank = self.banks[asset_id]
        if bank.heard(dt_util.utcnow()):
            self._availability(asset_id, online=True)
        if isinstance(reading, KeypadEntry):
            if reading.sent_at is not None and self._stale(asset_id, reading.sent_at):
                return
            self.hass.async_create_task(
                self._async_keypad(asset_id, reading.code), eager_start=True
            )
            return
        update = bank.apply(  # an unknown compartment is refused by the bank itself
            dt_util.utcnow(),
            reading.compartment,
            door_open=reading.door_open,
            locked=reading.locked,
            item_present=reading.item_present,
        )
        if update.changed or update.commands:
            # A collection or a return must survive a crash right after it, like a booking.
            self._apply_then_save(asset_id, update)

    def _stale(self, asset_id: str, sent_at: datetime) -> bool:
        """An entry typed too long ago (queued during an outage) opens nothing and counts not."""
        age = dt_util.utcnow() - sent_at
        if abs(age) <= ENTRY_MAX_AGE:
            return False
        self.stale_entries += 1
        self.log.warning(
            f"stale_entry:{asset_id}",
            "%s: ignored a keypad entry typed %.0f s %s (entries older than %s s are refused; "
            "further ones are counted in diagnostics)",
            self.assets[asset_id].name,
            abs(age.total_seconds()),
            "ago" if age.total_seconds() > 0 else "in the future by the controller's clock",
            ENTRY_MAX_AGE.total_seconds(),
        )
        return True

    async def _async_keypad(self, asset_id: str, code: str) -> None:
        # Refusals are counted, evented and logged already; the keypad has nobody to tell.
        with contextlib.suppress(LockerRefused):
            await self.async_release_code(asset_id, code, None)

    # -- services -----------------------------------------------------------------------------

    async def async_reserve(
        self,
        asset_id: str,
        *,
        compartment: int | None,
        item_type: str | None,
        pickup_window: timedelta | None,
        loan_period: timedelta | None,
        borrower: str,
        context: Context | None,
    ) -> Reservation:
        """Book a compartment; its codes are in the result and nowhere else in the clear."""
        bank = self.banks[asset_id]
        async with self._lock(asset_id):
            self._check_running(asset_id)
            chosen = bank.choose(compartment, item_type)
            codes = await self.hass.async_add_executor_job(issue_codes, bank.taken_hashes())
            reservation, update = bank.reserve(
                dt_util.utcnow(),
                chosen,
                codes,
                borrower=borrower,
                pickup_window=pickup_window,
                loan_period=loan_period,
            )
            await self._save_now()  # before anybody holds the codes
            await self._async_deliver(asset_id, update, context)
        return reservation

    async def async_release_code(self, asset_id: str, code: str, context: Context | None) -> int:
        """Open the compartment a code belongs to; the keypad and the service share this path."""
        bank = self.banks[asset_id]
        async with self._lock(asset_id):
            self._check_running(asset_id)
            now = dt_util.utcnow()
            locked_until = bank.keypad_locked_until(now)
            if locked_until is not None:
                # Not even checked: a waiting keypad must not help anybody guess.
                self.entries_while_locked += 1
                raise LockerRefused(
                    "keypad_locked", until=dt_util.as_local(locked_until).strftime("%H:%M:%S")
                )
            # A door that cannot be told to open: nothing is checked, used or counted.
            self._check_reachable(asset_id)
            candidates = bank.entry_candidates(now)
            match = await self.hass.async_add_executor_job(find_match, code, candidates)
            now = dt_util.utcnow()
            if match is not None and bank.was_just_used(now, match):
                # A redelivered entry, or a borrower typing their code again: not a guess.
                self.codes_repeated += 1
                raise LockerRefused("code_already_used")
            update = bank.accept_code(now, match) if match else bank.refuse_code(now)
            accepted = any(event.kind == "released" for event in update.events)
            # Stored before the door opens: after a crash a used code stays used.
            await self._save_now()
            await self._async_deliver(asset_id, update, context)
        if accepted and match is not None:
            self.codes_accepted += 1
            return match.compartment
        self.codes_refused += 1
        locked_until = bank.keypad_locked_until(dt_util.utcnow())
        if locked_until is not None:
            self.log.warning(
                f"keypad_locked:{asset_id}",
                "%s takes keypad entries again at %s after %s wrong codes in a row",
                bank.spec.name,
                dt_util.as_local(locked_until).isoformat(timespec="seconds"),
                bank.keypad.failures,
            )
        else:
            self.log.info(
                f"code_refused:{asset_id}",
                "%s refused a code (%s wrong in a row)",
                bank.spec.name,
                bank.keypad.failures,
            )
        raise LockerRefused("code_refused")

    async def async_change(
        self,
        asset_id: str,
        change: Callable[[LockerBank, datetime], LockerUpdate],
        context: Context | None,
    ) -> LockerUpdate:
        """Run one service's change on a bank, send and announce its results, save at once."""
        async with self._lock(asset_id):
            self._check_running(asset_id)
            bank = self.banks[asset_id]
            now = dt_util.utcnow()
            update = change(bank, now)
            if update.commands and not self._reachable(asset_id):
                self._take_back(asset_id, update.commands)
                self._check_reachable(asset_id)
            await self._save_now()
            await self._async_deliver(asset_id, update, context)
        return update

    def _check_running(self, asset_id: str) -> None:
        if self.stopped:  # a reload is under way: the next runtime takes over the bank
            raise LockerRefused("site_reloading")
        if asset_id not in self.banks:  # removed while the call waited for the bank
            raise LockerRefused("bank_removed")

    def _reachable(self, asset_id: str) -> bool:
        return delivery.reachable(self.hass, self.assets[asset_id].source_kind, self.zha)

    def _check_reachable(self, asset_id: str) -> None:
        if not self._reachable(asset_id):
            self.unreachable += 1
            raise LockerRefused("bank_unreachable", bank=self.assets[asset_id].name)

    def _take_back(self, asset_id: str, commands: list[LockCommand]) -> None:
        """Undo the unlocks among commands that never left (their codes work again)."""
        bank = self.banks[asset_id]
        now = dt_util.utcnow()
        for command in commands:
            if not command.locked:
                bank.unlock_not_sent(now, command.compartment)

    async def _async_deliver(
        self, asset_id: str, update: LockerUpdate, context: Context | None
    ) -> None:
        """Send a stored change's commands and wait for them; what did not leave is undone.

        Then its events are announced. A command that did not leave fails the call: an UNLOCK
        is taken back (the code works again) and a LOCK follows it, so that a client which
        still delivers the UNLOCK after reconnecting leaves the compartment locked.
        """
        sent = [await self._async_send(asset_id, command) for command in update.commands]
        unsent = [command for command, ok in zip(update.commands, sent, strict=True) if not ok]
        if unsent:
            self._take_back(asset_id, unsent)
            for command in unsent:
                if not command.locked:
                    self._send(asset_id, LockCommand(command.compartment, True))
            await self._save_now()
            self._notify(asset_id)
            self.unreachable += 1
            raise LockerRefused("bank_unreachable", bank=self.assets[asset_id].name)
        self._announce(asset_id, self._event_data(asset_id, update), update, context)

    async def async_stop(self) -> None:
        """Let calls under way finish (each stores its change), refuse later ones."""
        self.stopped = True
        for lock in list(self._bank_locks.values()):
            async with lock:
                pass

    def _lock(self, asset_id: str) -> asyncio.Lock:
        return self._bank_locks.setdefault(asset_id, asyncio.Lock())

    # -- time ---------------------------------------------------------------------------------

    @callback
    def tick(self, now: datetime) -> None:
        """Deadlines on every bank, and whether each is still there."""
        for asset_id, bank in self.banks.items():
            self._check_there(asset_id, bank, now)
            update = bank.tick(now)
            if update.changed or update.commands:
                self._apply_then_save(asset_id, update)

    def _check_there(self, asset_id: str, bank: LockerBank, now: datetime) -> None:
        """Silence beyond the report interval, or ZHA's radio gone, makes a bank unavailable."""
        if self.assets[asset_id].source_kind == "zha":
            zha = self.zha
            if zha is None or not delivery.zha_reachable(self.hass, zha):
                if bank.set_online(False):
                    self._availability(asset_id, online=False, why="ZHA is not running")
                return
            seen = zha.last_seen(self.assets[asset_id].device)
            fresh = seen is not None and (bank.last_heard is None or seen > bank.last_heard)
            if fresh and seen is not None and bank.heard(seen):
                self._availability(asset_id, online=True)
        if bank.check_silence(now):
            self._availability(asset_id, online=False, why="it missed its reports")

    def _availability(self, asset_id: str, *, online: bool, why: str = "") -> None:
        """Logged once each way; the compartments' entities follow."""
        name = self.assets[asset_id].name
        if online:
            LOGGER.info("%s reports again; its compartments are available", name)
        else:
            LOGGER.warning("%s is unavailable (%s); so are its compartments", name, why)
        self._notify(asset_id)

    # -- results ------------------------------------------------------------------------------

    @callback
    def _apply_then_save(self, asset_id: str, update: LockerUpdate) -> None:
        """A fact or a deadline: lock commands at once, the news once it is stored."""
        for command in update.commands:
            self._send(asset_id, command)
        events = self._event_data(asset_id, update)  # as things stand now, not after the save

        async def save_then_announce() -> None:
            await self._save_now()
            self._announce(asset_id, events, update, None)

        self.hass.async_create_task(save_then_announce(), eager_start=True)

    def _event_data(self, asset_id: str, update: LockerUpdate) -> list[tuple[str, dict[str, Any]]]:
        if not update.events:
            return []
        bank = self.banks[asset_id]
        base = {
            "config_entry_id": self.entry.entry_id,
            "asset_id": asset_id,
            "bank": bank.spec.name,
            "bank_device_id": self.device_id(asset_id),
        }
        events = []
        for event in update.events:
            data: dict[str, Any] = {**base, **event.details}
            if event.compartment is not None:
                data.update(compartment_data(bank.compartments[event.compartment], event.loan))
            events.append((EVENT_PREFIX + event.kind, data))
        return events

    @callback
    def _announce(
        self,
        asset_id: str,
        events: list[tuple[str, dict[str, Any]]],
        update: LockerUpdate,
        context: Context | None,
    ) -> None:
        for event_type, data in events:
            self.hass.bus.async_fire(event_type, data, context=context)
        if update.changed or update.commands:
            self._notify(asset_id)

    def _send(self, asset_id: str, command: LockCommand) -> None:
        """Send in the background (facts and deadlines: nobody waits for an answer)."""
        self.hass.async_create_task(self._async_send(asset_id, command), eager_start=True)

    async def _async_send(self, asset_id: str, command: LockCommand) -> bool:
        asset = self.assets[asset_id]
        self.commands_sent += 1
        if asset.source_kind == "zha":
            set_locked = methodcaller(
                "async_set_locked", asset.device, command.compartment, command.locked
            )
            sending = delivery.async_zha(self.zha, asset.device, set_locked, self._failed)
        else:
            sending = delivery.async_publish(
                self.hass,
                native.compartment_command_topic(
                    self._native_base, asset.device, command.compartment
                ),
                native.lock_payload(command.locked),
                1,
                self._failed,
            )
        return await sending

    def _failed(self, target: str, reason: object) -> None:
        self.command_errors += 1  # the bank keeps its last state
        self.log.warning(
            f"command_failed:{target}", "Lock command to %s failed: %s", target, reason
        )


def _kept_issue(source_kind: str, device: str) -> str:
    return f"locker_bank_removed_{source_kind}_{device}"


def refusal(err: LockerRefused) -> ServiceValidationError:
    """A bank's refusal as the translated error a service or an entity action raises."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=f"locker_{err.reason}",
        translation_placeholders=dict(err.details),
    )


def compartment_data(compartment: Compartment, loan: Loan | None) -> dict[str, Any]:
    """What events and the state sensor say about a compartment and its booking."""
    spec = compartment.spec
    data: dict[str, Any] = {
        "compartment": spec.number,
        "item": spec.item,
        "item_type": spec.item_type,
        "state": compartment.state.value,
    }
    if loan is not None:
        data.update(
            {
                "reservation_id": loan.reservation_id,
                "borrower": loan.borrower,
                "pickup_until": loan.pickup_until.isoformat(),
                "loan_until": loan.loan_until.isoformat() if loan.loan_until else None,
            }
        )
    return data
