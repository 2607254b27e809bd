"""Locker banks that lend items: reservations, loans, one-time codes and the keypad lock-out.

Every transition follows a service call or a fact the bank reported (door opened, item taken,
item put back) or a deadline passing; nothing is inferred. The bank answers each call with a
`LockerUpdate`: the events to announce and the lock commands to send.

Codes are random digits handed out once. Only salted scrypt hashes are kept, each with its
parameters so they can be raised later; an entered code is checked against every code that
could open something at that bank right now, all of them, so the time taken does not say
which (or whether one) matched. Hashing is slow on purpose: callers run `find_match` and
`issue_codes` off the event loop.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
import hashlib
import hmac
import secrets
from typing import Any

from ..sources.reading import MAX_COMPARTMENTS, valid_code_text
from .container import OFFLINE_AFTER_INTERVALS

CODE_DIGITS = 6
SCRYPT_N = 2**12  # about 14 ms per hash on the target machines; a keypad entry checks a few
SCRYPT_R = 8
SCRYPT_P = 1
# The keypad's answer to wrong codes: a growing wait per wrong entry, never a long lock-out of
# the whole bank. Typos are free; from the fourth wrong entry in a row the keypad takes the next
# entry only after a wait that doubles from 5 s up to a ceiling of 100 s * (L + 1), L being the
# codes that can open something at the bank right now (one per booked compartment). Guessing
# 6-digit codes at random without repeats finds one of L after (10**6 + 1) / (L + 1) guesses on
# average; one guess per ceiling makes that 10**6 * 100 s = 10**8 s, about 3.2 years, whatever
# the bank's size. An honest borrower waits at most the ceiling while somebody hammers the
# keypad (3 min 20 s with one live code, 11 min 40 s with six) and nothing or seconds after
# other people's typos (three are free, then 5 s, 10 s, 20 s).
FREE_FAILURES = 3
FIRST_DELAY = timedelta(seconds=5)
DELAY_PER_LIVE_CODE = timedelta(seconds=100)
MAX_DELAY_CEILING = timedelta(hours=2)  # 64 compartments reach 108 min
MAX_FAILURES = 5  # this many wrong in a row announces `keypad_locked` (someone may be guessing)
LOCKOUT_MEMORY = timedelta(hours=24)  # quiet this long and the count starts over
# A code that opened a door this recently is recognised when it comes again (a QoS-1 redelivery,
# a borrower retyping it) and neither counted wrong nor opening anything.
USED_CODE_GRACE = timedelta(minutes=10)
# A keypad entry that says when it was typed is refused once this old (queued during an outage:
# nobody stands at the door any more) or this far in the future (a controller clock gone wrong).
ENTRY_MAX_AGE = timedelta(seconds=10)
UNLOCK_TIMEOUT = timedelta(seconds=90)  # unlocked but the door never opened: lock again
# Item sensors may report a little after the door: what moves this soon after the door closed
# still belongs to the unlock that opened it.
ITEM_SETTLE = timedelta(seconds=60)
HISTORY_KEPT = timedelta(days=60)
MAX_HISTORY = 500
MAX_PERIOD = timedelta(days=30)


class LoanState(StrEnum):
    """What a compartment is doing, as the loan_state sensor shows it."""

    AVAILABLE = "available"
    RESERVED = "reserved"
    ON_LOAN = "on_loan"
    OVERDUE = "overdue"
    OUT_OF_SERVICE = "out_of_service"


class Unlock(StrEnum):
    """Why the last unlock command went out (what the next door and item facts mean)."""

    PICKUP = "pickup"
    RETURN = "return"
    MAINTENANCE = "maintenance"


class LockerRefused(Exception):
    """A request the bank refuses; `reason` is a translation key, `details` its placeholders."""

    def __init__(self, reason: str, **details: str) -> None:
        """Keep the reason machine-readable and the details for the message."""
        super().__init__(reason)
        self.reason = reason
        self.details = details


# -- codes ---------------------------------------------------------------------------------------


def new_code() -> str:
    """A random code of CODE_DIGITS digits (leading zeros kept)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_code(code: str, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$hash`, salted per code."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(code.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def code_matches(code: str, hashed: str) -> bool:
    """Whether `code` is the one behind `hashed`, compared in constant time."""
    try:
        scheme, n, r, p, salt, digest = hashed.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.scrypt(
            code.encode(),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError, OverflowError, TypeError:  # a damaged hash opens nothing
        return False
    return hmac.compare_digest(actual, expected)


@dataclass(frozen=True, slots=True)
class CodeCandidate:
    """A code that can open a compartment right now, as the bank stores it."""

    compartment: int
    purpose: Unlock
    hashed: str


def find_match(code: str, candidates: Iterable[CodeCandidate]) -> CodeCandidate | None:
    """The candidate `code` opens; every candidate is hashed whatever matched before."""
    if not valid_code_text(code):
        return None  # no code at all opens nothing
    found = None
    for candidate in candidates:
        if code_matches(code, candidate.hashed) and found is None:
            found = candidate
    return found


def issue_codes(taken: Iterable[str], count: int = 2) -> list[tuple[str, str]]:
    """`count` fresh (code, hash) pairs that open nothing else at the bank and differ."""
    taken = list(taken)
    issued: list[tuple[str, str]] = []
    while len(issued) < count:
        code = new_code()
        if any(code == other for other, _ in issued) or any(
            code_matches(code, hashed) for hashed in taken
        ):
            continue
        issued.append((code, hash_code(code)))
    return issued


# -- assets --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompartmentSpec:
    """A compartment and the item it lends."""

    number: int
    item: str
    item_type: str


@dataclass(frozen=True, slots=True)
class LockerBankSpec:
    """A bank of compartments at one place in the park."""

    name: str
    latitude: float
    longitude: float
    compartments: tuple[CompartmentSpec, ...]
    pickup_window: timedelta = timedelta(hours=2)
    loan_period: timedelta = timedelta(hours=4)
    # How often the controller reports at least (a heartbeat); None: it only reports changes,
    # and silence says nothing.
    report_interval: timedelta | None = None


@dataclass(slots=True)
class Loan:
    """One booking of one compartment: a reservation, then (once collected) a loan."""

    reservation_id: str
    compartment: int
    borrower: str
    reserved_at: datetime
    pickup_until: datetime
    loan_period: timedelta
    pickup_hash: str | None = field(default=None, repr=False)
    return_hash: str | None = field(default=None, repr=False)
    collected_at: datetime | None = None
    loan_until: datetime | None = None
    overdue: bool = False
    ended_at: datetime | None = None
    outcome: str | None = None  # returned, returned_by_staff, cancelled, expired

    @property
    def collected(self) -> bool:
        """Whether the item has left the compartment with the borrower."""
        return self.collected_at is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for storage (hashes only, never a code)."""
        return {
            "reservation_id": self.reservation_id,
            "compartment": self.compartment,
            "borrower": self.borrower,
            "reserved_at": self.reserved_at.isoformat(),
            "pickup_until": self.pickup_until.isoformat(),
            "loan_period_s": self.loan_period.total_seconds(),
            "pickup_hash": self.pickup_hash,
            "return_hash": self.return_hash,
            "collected_at": _iso(self.collected_at),
            "loan_until": _iso(self.loan_until),
            "overdue": self.overdue,
            "ended_at": _iso(self.ended_at),
            "outcome": self.outcome,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Loan:
        """Rebuild from storage; raise ValueError/TypeError/KeyError on damaged data."""
        return cls(
            reservation_id=str(data["reservation_id"]),
            compartment=int(data["compartment"]),
            borrower=str(data.get("borrower") or ""),
            reserved_at=_parse(data["reserved_at"]),
            pickup_until=_parse(data["pickup_until"]),
            loan_period=timedelta(seconds=float(data["loan_period_s"])),
            pickup_hash=_optional_str(data.get("pickup_hash")),
            return_hash=_optional_str(data.get("return_hash")),
            collected_at=_parse_optional(data.get("collected_at")),
            loan_until=_parse_optional(data.get("loan_until")),
            overdue=bool(data.get("overdue", False)),
            ended_at=_parse_optional(data.get("ended_at")),
            outcome=_optional_str(data.get("outcome")),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("timestamp must be text")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp without a time zone")
    return parsed


def _parse_optional(value: Any) -> datetime | None:
    return None if value is None else _parse(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


@dataclass(slots=True)
class CompartmentStatus:
    """What the bank last reported about a compartment, and what it is lending."""

    door_open: bool | None = None
    locked: bool | None = None
    item_present: bool | None = None
    out_of_service: bool = False
    out_of_service_reason: str = ""
    loan: Loan | None = None
    # An unlock session: why the compartment was unlocked, when, the code hash that opened it
    # (given back if the door never opens) and when the door closed again.
    unlocked_for: Unlock | None = None
    unlocked_at: datetime | None = None
    unlock_hash: str | None = field(default=None, repr=False)
    closed_at: datetime | None = None
    door_opened_at: datetime | None = None


class Compartment:
    """One compartment of a bank."""

    def __init__(self, spec: CompartmentSpec) -> None:
        """Start with nothing reported and nothing lent."""
        self.spec = spec
        self.status = CompartmentStatus()

    @property
    def state(self) -> LoanState:
        """The lending state (out of service wins; overdue is set when the loan ends)."""
        status = self.status
        if status.out_of_service:
            return LoanState.OUT_OF_SERVICE
        loan = status.loan
        if loan is None:
            return LoanState.AVAILABLE
        if not loan.collected:
            return LoanState.RESERVED
        return LoanState.OVERDUE if loan.overdue else LoanState.ON_LOAN

    @property
    def lendable(self) -> bool:
        """Free, in service, and the bank reported the item inside (unknown is not lendable)."""
        status = self.status
        return not status.out_of_service and status.loan is None and status.item_present is True


@dataclass(frozen=True, slots=True)
class LockerEvent:
    """Something that happened at the bank, for `city_ops_locker_<kind>` events."""

    kind: str
    compartment: int | None = None
    loan: Loan | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LockCommand:
    """Lock or unlock one compartment."""

    compartment: int
    locked: bool


@dataclass(slots=True)
class LockerUpdate:
    """What a call changed: events to announce and commands to send."""

    events: list[LockerEvent] = field(default_factory=list)
    commands: list[LockCommand] = field(default_factory=list)
    changed: bool = False

    def add(self, kind: str, compartment: Compartment | None = None, **details: Any) -> None:
        """Announce an event (with the compartment's current loan, if any)."""
        self.changed = True
        if compartment is None:
            self.events.append(LockerEvent(kind, details=details))
            return
        self.events.append(
            LockerEvent(kind, compartment.spec.number, compartment.status.loan, details)
        )


@dataclass(slots=True)
class Keypad:
    """Wrong codes typed at a bank in a row, the wait they earned, and codes just used."""

    failures: int = 0
    locked_until: datetime | None = None  # entries before this are refused unchecked
    last_failure: datetime | None = None
    used: list[tuple[datetime, CodeCandidate]] = field(default_factory=list)

    def locked(self, now: datetime) -> bool:
        """Whether the keypad refuses every entry right now."""
        return self.locked_until is not None and now < self.locked_until

    def recently_used(self, now: datetime) -> list[CodeCandidate]:
        """Codes that opened a door within USED_CODE_GRACE (oldest first)."""
        self.used = [(at, code) for at, code in self.used if now - at <= USED_CODE_GRACE]
        return [code for _, code in self.used]


def keypad_delay(failures: int, live_codes: int) -> timedelta:
    """How long the keypad waits after `failures` wrong entries in a row."""
    if failures <= FREE_FAILURES:
        return timedelta(0)
    ceiling = min(DELAY_PER_LIVE_CODE * (live_codes + 1), MAX_DELAY_CEILING)
    doublings = min(failures - FREE_FAILURES - 1, 32)  # 5 s * 2**32 is beyond any ceiling
    grown: timedelta = FIRST_DELAY * (1 << doublings)
    return min(grown, ceiling)


@dataclass(frozen=True, slots=True)
class Reservation:
    """A new reservation and, once, its codes in the clear (for the caller only)."""

    loan: Loan
    code: str = field(repr=False)
    return_code: str = field(repr=False)


class LockerBank:
    """A bank of compartments, its bookings and its keypad."""

    def __init__(self, spec: LockerBankSpec) -> None:
        """Start with every compartment free and the keypad open."""
        self.spec = spec
        self.compartments = {c.number: Compartment(c) for c in spec.compartments}
        self.keypad = Keypad()
        self.history: list[Loan] = []
        self.unexpected: dict[str, int] = {}
        self.online = True
        self.last_heard: datetime | None = None

    def change_spec(self, spec: LockerBankSpec) -> list[int]:
        """Follow a changed bank; kept compartments keep their state. Return those dropped.

        A compartment that lends something cannot be dropped: the flows and the import
        refuse that first, and so does this (its loan would go with it).
        """
        numbers = {c.number for c in spec.compartments}
        dropped = [number for number in self.compartments if number not in numbers]
        if any(self.compartments[number].status.loan is not None for number in dropped):
            raise LockerRefused("compartment_in_use")
        self.spec = spec
        for number in dropped:
            del self.compartments[number]
        for compartment_spec in spec.compartments:
            compartment = self.compartments.get(compartment_spec.number)
            if compartment is None:
                self.compartments[compartment_spec.number] = Compartment(compartment_spec)
            else:
                compartment.spec = compartment_spec
        return dropped

    # -- is the bank there? --------------------------------------------------------------------

    def heard(self, now: datetime) -> bool:
        """The bank reported; True when that brings it back from silence."""
        self.last_heard = now
        return self.set_online(True)

    def set_online(self, online: bool) -> bool:
        """The bank's reachability as its radio or gateway tells it; True when it changed."""
        changed = online != self.online
        self.online = online
        return changed

    def check_silence(self, now: datetime) -> bool:
        """True when the bank just missed OFFLINE_AFTER_INTERVALS report intervals."""
        interval = self.spec.report_interval
        if interval is None or not self.online:
            return False
        if self.last_heard is None:
            self.last_heard = now  # the time starts with Home Assistant
            return False
        if now - self.last_heard <= interval * OFFLINE_AFTER_INTERVALS:
            return False
        self.online = False
        return True

    # -- queries -------------------------------------------------------------------------------

    def compartment(self, number: int) -> Compartment:
        """The compartment with this number, or a refusal."""
        compartment = self.compartments.get(number)
        if compartment is None:
            raise LockerRefused("unknown_compartment", compartment=str(number))
        return compartment

    def available(self) -> dict[str, int]:
        """Lendable compartments per item type."""
        counts: dict[str, int] = {}
        for compartment in self.compartments.values():
            if compartment.lendable:
                kind = compartment.spec.item_type
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    def active_loans(self) -> list[Loan]:
        """Reservations and loans that have not ended."""
        return [c.status.loan for c in self.compartments.values() if c.status.loan is not None]

    def find_loan(self, reservation_id: str) -> Compartment:
        """The compartment holding an active booking, or a refusal."""
        for compartment in self.compartments.values():
            loan = compartment.status.loan
            if loan is not None and hmac.compare_digest(
                loan.reservation_id.encode(), reservation_id.encode()
            ):
                return compartment
        raise LockerRefused("unknown_reservation")

    def code_hashes(self) -> list[str]:
        """Every stored code hash that is still live (for codes issued next to them)."""
        hashes = []
        for compartment in self.compartments.values():
            loan = compartment.status.loan
            live = (
                loan.pickup_hash if loan else None,
                loan.return_hash if loan else None,
                compartment.status.unlock_hash,  # may be given back if its door never opens
            )
            hashes += [h for h in live if h is not None]
        return hashes

    def taken_hashes(self) -> list[str]:
        """Hashes a new code must not match: live ones and those just used.

        A code just used may come again (a redelivery); it must not open somebody else's door.
        """
        return [*self.code_hashes(), *(used.hashed for _, used in self.keypad.used)]

    def code_candidates(self, now: datetime) -> list[CodeCandidate]:
        """Codes that can open something right now."""
        candidates = []
        for number, compartment in self.compartments.items():
            loan = compartment.status.loan
            if loan is None or compartment.status.out_of_service:
                continue
            if not loan.collected and loan.pickup_hash and now <= loan.pickup_until:
                candidates.append(CodeCandidate(number, Unlock.PICKUP, loan.pickup_hash))
            elif loan.collected and loan.return_hash:
                candidates.append(CodeCandidate(number, Unlock.RETURN, loan.return_hash))
        return candidates

    # -- services ------------------------------------------------------------------------------

    def choose(self, compartment: int | None, item_type: str | None) -> Compartment:
        """The compartment a reservation would take, or a refusal."""
        if compartment is not None:
            chosen = self.compartment(compartment)
            if item_type is not None and chosen.spec.item_type != item_type:
                raise LockerRefused(
                    "wrong_item_type", compartment=str(compartment), item_type=item_type
                )
            self._check_lendable(chosen)
            return chosen
        if item_type is None:
            raise LockerRefused("compartment_or_item_type")
        for candidate in sorted(self.compartments.values(), key=lambda c: c.spec.number):
            if candidate.spec.item_type == item_type and candidate.lendable:
                return candidate
        raise LockerRefused("no_item_available", item_type=item_type)

    @staticmethod
    def _check_lendable(compartment: Compartment) -> None:
        number = str(compartment.spec.number)
        if compartment.status.out_of_service:
            raise LockerRefused("out_of_service", compartment=number)
        if compartment.status.loan is not None:
            raise LockerRefused("compartment_taken", compartment=number)
        if compartment.status.item_present is not True:
            raise LockerRefused("item_missing", compartment=number)

    def reserve(
        self,
        now: datetime,
        compartment: Compartment,
        codes: list[tuple[str, str]],
        *,
        borrower: str = "",
        pickup_window: timedelta | None = None,
        loan_period: timedelta | None = None,
    ) -> tuple[Reservation, LockerUpdate]:
        """Book a compartment chosen by `choose` with codes from `issue_codes`."""
        self._check_lendable(compartment)
        window = self.spec.pickup_window if pickup_window is None else pickup_window
        period = self.spec.loan_period if loan_period is None else loan_period
        for span in (window, period):
            if not timedelta(minutes=1) <= span <= MAX_PERIOD:
                raise LockerRefused("invalid_period")
        (code, code_hash), (return_code, return_hash) = codes
        loan = Loan(
            reservation_id=secrets.token_hex(8),
            compartment=compartment.spec.number,
            borrower=borrower,
            reserved_at=now,
            pickup_until=now + window,
            loan_period=period,
            pickup_hash=code_hash,
            return_hash=return_hash,
        )
        compartment.status.loan = loan
        update = LockerUpdate()
        update.add("reserved", compartment)
        return Reservation(loan, code, return_code), update

    def cancel(self, now: datetime, compartment: Compartment) -> LockerUpdate:
        """Drop a reservation that has not been collected."""
        loan = compartment.status.loan
        if loan is None:
            raise LockerRefused("no_reservation", compartment=str(compartment.spec.number))
        if loan.collected:
            raise LockerRefused("already_collected", compartment=str(compartment.spec.number))
        if compartment.status.unlocked_for is Unlock.PICKUP:
            # The code has opened the lock; the item may be on its way out right now.
            raise LockerRefused("pickup_under_way", compartment=str(compartment.spec.number))
        update = LockerUpdate()
        update.add("cancelled", compartment)
        self._end(now, compartment, "cancelled", update)
        return update

    def extend(self, now: datetime, compartment: Compartment, by: timedelta) -> LockerUpdate:
        """Lengthen a loan; an overdue one runs from now again."""
        loan = compartment.status.loan
        if loan is None or not loan.collected or loan.loan_until is None:
            raise LockerRefused("not_on_loan", compartment=str(compartment.spec.number))
        if not timedelta(minutes=1) <= by <= MAX_PERIOD:
            raise LockerRefused("invalid_period")
        loan.loan_until = max(loan.loan_until, now) + by
        loan.overdue = False
        update = LockerUpdate()
        update.add("extended", compartment)
        return update

    def mark_returned(self, now: datetime, compartment: Compartment) -> LockerUpdate:
        """Staff took the item back by hand."""
        loan = compartment.status.loan
        if loan is None or not loan.collected:
            raise LockerRefused("not_on_loan", compartment=str(compartment.spec.number))
        update = LockerUpdate()
        update.add("returned", compartment, by_staff=True)
        self._end(now, compartment, "returned_by_staff", update)
        return update

    def set_out_of_service(
        self, now: datetime, compartment: Compartment, out: bool, reason: str = ""
    ) -> LockerUpdate:
        """Take a compartment out of lending (only when nothing is booked) or back in."""
        status = compartment.status
        update = LockerUpdate()
        if out:
            if status.loan is not None:
                raise LockerRefused("compartment_in_use", compartment=str(compartment.spec.number))
            if status.out_of_service and status.out_of_service_reason == reason:
                return update
            status.out_of_service = True
            status.out_of_service_reason = reason
            update.add("out_of_service", compartment, reason=reason)
        elif status.out_of_service:
            status.out_of_service = False
            status.out_of_service_reason = ""
            update.add("in_service", compartment)
        return update

    def open_for_maintenance(self, now: datetime, compartment: Compartment) -> LockerUpdate:
        """Unlock without a code (admins only; checked by the caller)."""
        update = LockerUpdate()
        self._unlock(now, compartment, Unlock.MAINTENANCE, update)
        update.add("maintenance", compartment)
        return update

    def lock(self, now: datetime, compartment: Compartment) -> LockerUpdate:
        """Lock a compartment (anyone may: nothing opens by it).

        An unlock under way stays what it is: the borrower may already hold the door, and what
        the item sensor reports next still belongs to that pickup or return.
        """
        return LockerUpdate(commands=[LockCommand(compartment.spec.number, True)], changed=True)

    # -- keypad --------------------------------------------------------------------------------

    def keypad_locked_until(self, now: datetime) -> datetime | None:
        """When the keypad opens again, if it is locked now."""
        return self.keypad.locked_until if self.keypad.locked(now) else None

    def entry_candidates(self, now: datetime) -> list[CodeCandidate]:
        """What an entered code is checked against: live codes first, then codes just used."""
        return [*self.code_candidates(now), *self.keypad.recently_used(now)]

    def was_just_used(self, now: datetime, candidate: CodeCandidate) -> bool:
        """Whether a match is a code that opened its door a moment ago (not counted wrong)."""
        return candidate not in self.code_candidates(now) and candidate in (
            self.keypad.recently_used(now)
        )

    def accept_code(self, now: datetime, candidate: CodeCandidate) -> LockerUpdate:
        """Open the compartment a matching code belongs to; each code opens once.

        The match was computed off the loop; the booking may have changed since, so it must
        still hold exactly this hash.
        """
        compartment = self.compartments.get(candidate.compartment)
        still_valid = compartment is not None and candidate in self.code_candidates(now)
        if compartment is None or not still_valid or compartment.status.loan is None:
            return self.refuse_code(now)
        loan = compartment.status.loan
        if candidate.purpose is Unlock.PICKUP:
            loan.pickup_hash = None
        else:
            loan.return_hash = None
        # The wrong-entry count is not reset here but when the door opens: a borrower who
        # types guesses around their own code, never opening, must still run into the lock-out.
        update = LockerUpdate()
        self._unlock(now, compartment, candidate.purpose, update)
        compartment.status.unlock_hash = candidate.hashed
        self.keypad.used.append((now, candidate))
        del self.keypad.used[: -2 * len(self.compartments)]
        update.add("released", compartment, purpose=candidate.purpose.value)
        return update

    def unlock_not_sent(self, now: datetime, number: int) -> LockerUpdate:
        """The UNLOCK never left: the code opened nothing, so it works again, as before."""
        compartment = self.compartment(number)
        status = compartment.status
        update = LockerUpdate()
        if status.unlocked_for is None or status.door_open or status.closed_at is not None:
            return update  # the door opened after all: the bank got it
        self._give_back(compartment)
        _end_session(status)
        update.changed = True
        return update

    def _give_back(self, compartment: Compartment) -> None:
        """Hand the code of an unlock whose door never opened back to its booking."""
        status = compartment.status
        loan = status.loan
        if loan is not None and status.unlock_hash is not None:
            if status.unlocked_for is Unlock.PICKUP and not loan.collected:
                loan.pickup_hash = status.unlock_hash
            elif status.unlocked_for is Unlock.RETURN and loan.collected:
                loan.return_hash = status.unlock_hash
            number = compartment.spec.number
            self.keypad.used = [
                (at, used)
                for at, used in self.keypad.used
                if (used.compartment, used.hashed) != (number, status.unlock_hash)
            ]

    def refuse_code(self, now: datetime) -> LockerUpdate:
        """Count a wrong code; from the fourth in a row the keypad waits, longer each time."""
        keypad = self.keypad
        update = LockerUpdate()
        if keypad.last_failure is not None and now - keypad.last_failure > LOCKOUT_MEMORY:
            keypad.failures = 0
        keypad.failures += 1
        keypad.last_failure = now
        update.add("code_refused", failures=keypad.failures)
        delay = keypad_delay(keypad.failures, len(self.code_candidates(now)))
        if delay:
            keypad.locked_until = now + delay
        if keypad.failures == MAX_FAILURES:
            update.add("keypad_locked", locked_until=_iso(keypad.locked_until))
        return update

    def _unlock(
        self, now: datetime, compartment: Compartment, purpose: Unlock, update: LockerUpdate
    ) -> None:
        _end_session(compartment.status)
        compartment.status.unlocked_for = purpose
        compartment.status.unlocked_at = now
        update.commands.append(LockCommand(compartment.spec.number, False))
        update.changed = True

    # -- facts from the bank -------------------------------------------------------------------

    def apply(
        self,
        now: datetime,
        number: int,
        *,
        door_open: bool | None = None,
        locked: bool | None = None,
        item_present: bool | None = None,
    ) -> LockerUpdate:
        """Take what the bank reported about one compartment; repeated facts change nothing."""
        compartment = self.compartment(number)
        status = compartment.status
        update = LockerUpdate()
        if locked is not None and locked != status.locked:
            status.locked = locked
            update.changed = True
        if door_open is not None and door_open != status.door_open:
            update.changed = True
            status.door_open = door_open
            if door_open:
                status.door_opened_at = now
                if status.unlocked_for in (Unlock.PICKUP, Unlock.RETURN) and not status.closed_at:
                    self.keypad.failures = 0  # a code that really opened a door
                if (
                    status.unlocked_for is None or status.closed_at is not None
                ) and status.locked is not False:
                    self._unexpected("door_opened_while_locked")
            else:
                status.door_opened_at = None
                if status.unlocked_for is not None and status.closed_at is None:
                    # Closed after an unlock: lock it again, whatever happened inside. The
                    # session lives on a little for an item sensor that reports late.
                    status.closed_at = now
                    status.unlock_hash = None
                    update.commands.append(LockCommand(number, True))
        if item_present is not None and item_present != status.item_present:
            previous = status.item_present
            status.item_present = item_present
            update.changed = True
            if previous is not None:  # the first report after set-up is inventory, not news
                self._item_moved(now, compartment, item_present, update)
        return update

    def _item_moved(
        self, now: datetime, compartment: Compartment, present: bool, update: LockerUpdate
    ) -> None:
        status = compartment.status
        loan = status.loan
        if not present and status.unlocked_for is Unlock.PICKUP and loan and not loan.collected:
            loan.collected_at = now
            loan.loan_until = now + loan.loan_period
            update.add("collected", compartment)
        elif present and status.unlocked_for is Unlock.RETURN and loan and loan.collected:
            update.add("returned", compartment, by_staff=False)
            self._end(now, compartment, "returned", update)
        elif status.unlocked_for is not Unlock.MAINTENANCE:
            self._unexpected("item_taken_without_code" if not present else "item_put_back")

    def _unexpected(self, what: str) -> None:
        self.unexpected[what] = self.unexpected.get(what, 0) + 1

    # -- time ----------------------------------------------------------------------------------

    def tick(self, now: datetime) -> LockerUpdate:
        """Deadlines: uncollected reservations expire, loans fall overdue, unused unlocks end."""
        update = LockerUpdate()
        for compartment in self.compartments.values():
            status = compartment.status
            self._end_stale_session(now, compartment, update)
            loan = status.loan
            if loan is None:
                continue
            if not loan.collected and now > loan.pickup_until and status.unlocked_for is None:
                update.add("expired", compartment)
                self._end(now, compartment, "expired", update)
            elif loan.collected and not loan.overdue and loan.loan_until and now > loan.loan_until:
                loan.overdue = True
                update.add("overdue", compartment)
        keypad = self.keypad
        if keypad.locked_until is not None and now >= keypad.locked_until:
            keypad.locked_until = None
            update.changed = True
        keypad.recently_used(now)  # forget codes used a while ago
        self.history = [
            loan
            for loan in self.history[-MAX_HISTORY:]
            if loan.ended_at is None or now - loan.ended_at <= HISTORY_KEPT
        ]
        return update

    def _end_stale_session(
        self, now: datetime, compartment: Compartment, update: LockerUpdate
    ) -> None:
        """End an unlock whose door closed a while ago, or never opened (then lock it again)."""
        status = compartment.status
        if status.unlocked_for is None:
            return
        if status.closed_at is not None:
            if now - status.closed_at >= ITEM_SETTLE:
                _end_session(status)
                update.changed = True
            return
        if status.door_open or status.unlocked_at is None:
            return
        if now - status.unlocked_at < UNLOCK_TIMEOUT:
            return
        # Nobody opened the door: the code opened nothing, so it may open it again.
        self._give_back(compartment)
        _end_session(status)
        update.commands.append(LockCommand(compartment.spec.number, True))
        update.changed = True

    def _end(
        self, now: datetime, compartment: Compartment, outcome: str, update: LockerUpdate
    ) -> None:
        loan = compartment.status.loan
        if loan is None:
            return
        loan.ended_at = now
        loan.outcome = outcome
        loan.pickup_hash = None
        loan.return_hash = None
        compartment.status.loan = None
        # An unlock under way stays: its door closing still sends LOCK.
        compartment.status.unlock_hash = None
        self.history.append(loan)
        del self.history[:-MAX_HISTORY]
        update.changed = True

    def resume(self, now: datetime) -> None:
        """After a restart, give unlocks under way their time again from now.

        Facts may have changed while Home Assistant was down; the bank's retained or next
        reports settle them. Timing the unlock out before they arrive would hand a used code
        back and miss a collection.
        """
        for compartment in self.compartments.values():
            status = compartment.status
            if status.unlocked_for is None:
                continue
            if status.closed_at is not None:
                status.closed_at = now
            else:
                status.unlocked_at = now

    # -- storage -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything that must survive a restart or a crash."""
        keypad = self.keypad
        return {
            "compartments": {
                str(number): {
                    "door_open": c.status.door_open,
                    "locked": c.status.locked,
                    "item_present": c.status.item_present,
                    "out_of_service": c.status.out_of_service,
                    "out_of_service_reason": c.status.out_of_service_reason,
                    "loan": c.status.loan.to_dict() if c.status.loan else None,
                    "unlocked_for": c.status.unlocked_for,
                    "unlocked_at": _iso(c.status.unlocked_at),
                    "unlock_hash": c.status.unlock_hash,
                    "closed_at": _iso(c.status.closed_at),
                    "door_opened_at": _iso(c.status.door_opened_at),
                }
                for number, c in self.compartments.items()
            },
            "keypad": {
                "failures": keypad.failures,
                "locked_until": _iso(keypad.locked_until),
                "last_failure": _iso(keypad.last_failure),
                "used": [
                    {
                        "at": at.isoformat(),
                        "compartment": used.compartment,
                        "purpose": used.purpose.value,
                        "unlock_hash": used.hashed,  # redacted in diagnostics by name
                    }
                    for at, used in keypad.used
                ],
            },
            "history": [loan.to_dict() for loan in self.history],
            "unexpected": dict(self.unexpected),
        }

    def restore(self, data: Mapping[str, Any], warn: Callable[[str], None]) -> None:
        """Bring back stored state; a damaged part is skipped with a warning, never fatal."""
        compartments = data.get("compartments") or {}
        if not isinstance(compartments, Mapping):
            compartments = {}
            warn("compartments: not an object")
        for key, stored in compartments.items():
            try:
                compartment = self.compartments.get(int(key))
                if compartment is None:
                    # Removed from the bank; the flow and the import refuse that while it lends.
                    if isinstance(stored, Mapping) and stored.get("loan"):
                        warn(f"compartment {key} was removed with a booking in it")
                    continue
                compartment.status = _status_from_dict(stored)
            except (KeyError, TypeError, ValueError, OverflowError) as err:
                warn(f"compartment {key}: {err!r}"[:200])
        keypad = data.get("keypad")
        if isinstance(keypad, Mapping):
            try:
                self.keypad = Keypad(
                    failures=int(keypad.get("failures", 0)),
                    locked_until=_parse_optional(keypad.get("locked_until")),
                    last_failure=_parse_optional(keypad.get("last_failure")),
                    used=[
                        (
                            _parse(used["at"]),
                            CodeCandidate(
                                int(used["compartment"]),
                                Unlock(used["purpose"]),
                                str(used["unlock_hash"]),
                            ),
                        )
                        for used in keypad.get("used") or ()
                    ],
                )
            except (KeyError, TypeError, ValueError, OverflowError) as err:
                warn(f"keypad: {err!r}"[:200])
        history = data.get("history") or []
        if not isinstance(history, list):
            history = []
            warn("history: not a list")
        for stored in history:
            try:
                self.history.append(Loan.from_dict(stored))
            except (KeyError, TypeError, ValueError, OverflowError) as err:
                warn(f"history: {err!r}"[:200])
        unexpected = data.get("unexpected")
        if isinstance(unexpected, Mapping):
            self.unexpected = {str(k): int(v) for k, v in unexpected.items() if isinstance(v, int)}


def _end_session(status: CompartmentStatus) -> None:
    status.unlocked_for = None
    status.unlocked_at = None
    status.unlock_hash = None
    status.closed_at = None


def _status_from_dict(data: Any) -> CompartmentStatus:
    if not isinstance(data, Mapping):
        raise TypeError("compartment state must be an object")
    loan = data.get("loan")
    unlocked_for = data.get("unlocked_for")
    return CompartmentStatus(
        door_open=_optional_bool(data.get("door_open")),
        locked=_optional_bool(data.get("locked")),
        item_present=_optional_bool(data.get("item_present")),
        out_of_service=bool(data.get("out_of_service", False)),
        out_of_service_reason=str(data.get("out_of_service_reason") or ""),
        loan=Loan.from_dict(loan) if loan is not None else None,
        unlocked_for=Unlock(unlocked_for) if unlocked_for is not None else None,
        unlocked_at=_parse_optional(data.get("unlocked_at")),
        unlock_hash=_optional_str(data.get("unlock_hash")),
        closed_at=_parse_optional(data.get("closed_at")),
        door_opened_at=_parse_optional(data.get("door_opened_at")),
    )


def compartments_param(value: Any) -> list[dict[str, Any]]:
    """Validate a bank's compartment list (one place for the flow and the file import)."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_COMPARTMENTS:
        raise ValueError(f"compartments must be a list of 1 to {MAX_COMPARTMENTS} compartments")
    result = []
    numbers: set[int] = set()
    for entry in value:
        if not isinstance(entry, Mapping):
            raise ValueError("each compartment must be an object with number, item, item_type")
        number = entry.get("number")
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError("compartment number must be a whole number")
        if not 1 <= number <= MAX_COMPARTMENTS or number in numbers:
            raise ValueError(f"compartment numbers must be unique, from 1 to {MAX_COMPARTMENTS}")
        numbers.add(number)
        item = entry.get("item")
        item_type = entry.get("item_type")
        if not isinstance(item, str) or not item.strip() or len(item) > 64:
            raise ValueError(f"compartment {number}: item must be a text of 1 to 64 characters")
        if (
            not isinstance(item_type, str)
            or not item_type.strip()
            or len(item_type) > 32
            or not all(c.isascii() and (c.isalnum() or c == "_") for c in item_type.strip())
        ):
            raise ValueError(
                f"compartment {number}: item_type must be a short key such as hand_cart"
            )
        result.append(
            {"number": number, "item": item.strip(), "item_type": item_type.strip().lower()}
        )
    return sorted(result, key=lambda c: c["number"])
