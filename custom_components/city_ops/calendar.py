"""Each locker bank's reservations and loans as a calendar (never a code)."""

from __future__ import annotations

from datetime import datetime, timedelta

from homeassistant.components.calendar import (
    CalendarEntity,
    CalendarEntityDescription,
    CalendarEvent,
)
from homeassistant.components.calendar.const import CalendarEventStatus
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .entity import LockerBankEntity
from .model.locker import Loan, LockerBank
from .runtime import CityOpsConfigEntry

PARALLEL_UPDATES = 0
_MINUTE = timedelta(minutes=1)  # an event must end after it starts

RESERVATIONS = CalendarEntityDescription(key="reservations", translation_key="reservations")

# Calendar texts are not translated by Home Assistant; the site's language picks them.
SUMMARIES = {
    "en": {
        "reserved": "Reserved: {item} ({bank}, compartment {number})",
        "on_loan": "On loan: {item} ({bank}, compartment {number})",
        "overdue": "Overdue: {item} ({bank}, compartment {number})",
        "returned": "Returned: {item} ({bank}, compartment {number})",
        "outcome": "Outcome",
        "outcome_returned": "brought back",
        "outcome_returned_by_staff": "taken back by staff",
    },
    "de": {
        "reserved": "Reserviert: {item} ({bank}, Fach {number})",
        "on_loan": "Ausgeliehen: {item} ({bank}, Fach {number})",
        "overdue": "Überfällig: {item} ({bank}, Fach {number})",
        "returned": "Zurückgegeben: {item} ({bank}, Fach {number})",
        "outcome": "Ausgang",
        "outcome_returned": "zurückgebracht",
        "outcome_returned_by_staff": "vom Personal zurückgenommen",
    },
}


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CityOpsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Hand the site's budget what builds a bank's reservations calendar."""
    await entry.runtime_data.budget.async_register(
        Platform.CALENDAR,
        async_add_entities,
        lambda planned: ReservationsCalendar(entry, planned.asset_id or "", RESERVATIONS),
    )


def loan_events(bank: LockerBank, loan: Loan, now: datetime, language: str) -> list[CalendarEvent]:
    """The pickup window and, once collected, the loan of one booking."""
    texts = SUMMARIES.get(language.split("-", maxsplit=1)[0], SUMMARIES["en"])
    compartment = bank.compartments.get(loan.compartment)
    item = compartment.spec.item if compartment else "?"
    names = {"item": item, "number": loan.compartment, "bank": bank.spec.name}
    # Every user reads calendars: who booked (borrower, reservation id) stays out of them.
    outcome = texts.get(f"outcome_{loan.outcome}", loan.outcome or "")
    description = f"{texts['outcome']}: {outcome}" if outcome else ""
    uid = f"{bank.spec.name}-{loan.compartment}-{loan.reserved_at.isoformat()}"
    location = bank.spec.name
    events = []
    if loan.collected_at is None:
        if loan.outcome is not None:
            return []  # cancelled or expired: calendars do not list cancelled events
        end = loan.ended_at or loan.pickup_until
        events.append(
            CalendarEvent(
                start=loan.reserved_at,
                end=max(end, loan.reserved_at + _MINUTE),
                summary=texts["reserved"].format(**names),
                description=description,
                location=location,
                uid=f"{uid}-reservation",
                status=CalendarEventStatus.CONFIRMED,
            )
        )
        return events
    loan_until = loan.loan_until or loan.collected_at
    end = loan.ended_at or (max(loan_until, now) if loan.overdue else loan_until)
    events.append(
        CalendarEvent(
            start=loan.collected_at,
            end=max(end, loan.collected_at + _MINUTE),
            summary=texts[_loan_title(loan)].format(**names),
            description=description,
            location=location,
            uid=f"{uid}-loan",
            status=CalendarEventStatus.CONFIRMED,
        )
    )
    return events


def _loan_title(loan: Loan) -> str:
    """A returned loan says so; an overdue one says that first."""
    if loan.ended_at is not None:
        return "returned"
    return "overdue" if loan.overdue else "on_loan"


class ReservationsCalendar(LockerBankEntity, CalendarEntity):
    """Reservations (pickup windows) and loans of one bank, past and present."""

    def shown_value(self) -> object:
        """The bookings that shape the calendar's state."""
        return tuple(
            (loan.reservation_id, loan.collected_at, loan.loan_until, loan.overdue)
            for loan in self.bank.active_loans()
        )

    def _events(self, now: datetime) -> list[CalendarEvent]:
        language = self.hass.config.language
        events = []
        for loan in [*self.bank.history, *self.bank.active_loans()]:
            events += loan_events(self.bank, loan, now, language)
        return sorted(events, key=lambda event: event.start_datetime_local)

    @property
    def event(self) -> CalendarEvent | None:
        """The booking under way now, else the next one."""
        now = dt_util.utcnow()
        current = [event for event in self._events(now) if event.end_datetime_local > now]
        return current[0] if current else None

    async def async_get_events(
        self, hass: HomeAssistant, start_date: datetime, end_date: datetime
    ) -> list[CalendarEvent]:
        """Bookings overlapping the requested span: what is under way or to come first."""
        now = dt_util.utcnow()
        events = [
            event
            for event in self._events(now)
            if event.start_datetime_local < end_date and event.end_datetime_local > start_date
        ]
        coming = [event for event in events if event.end_datetime_local > now]
        past = [event for event in events if event.end_datetime_local <= now]
        return coming + past[::-1]
