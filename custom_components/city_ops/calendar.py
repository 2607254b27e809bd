"""Each locker bank's reservations and loans as a calendar (never a code)."""

from __future__ import annotations

from datetime import datetime, timedelta

from homeassistant.components.calendar import (
    CalendarEntity,
    CalendarEntityDescription,
    CalendarEvent,
)
from homeassistant.components.calendar.const import CalendarEventStatus
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .const import SUBENTRY_LOCKER_BANK
from .entity import LockerBankEntity
from .model.locker import Loan, LockerBank
from .runtime import CityOpsConfigEntry

PARALLEL_UPDATES = 0
_MINUTE = timedelta(minutes=1)  # an event must end after it starts

RESERVATIONS = CalendarEntityDescription(key="reservations", translation_key="reservations")

# Calendar texts are not translated by Home Assistant; the site's language picks them.
SUMMARIES = {
    "en": {
        "reserved": "Reserved: {item} (compartment {number})",
        "on_loan": "On loan: {item} (compartment {number})",
        "overdue": "Overdue: {item} (compartment {number})",
        "outcome": "Outcome",
    },
    "de": {
        "reserved": "Reserviert: {item} (Fach {number})",
        "on_loan": "Ausgeliehen: {item} (Fach {number})",
        "overdue": "Überfällig: {item} (Fach {number})",
        "outcome": "Ausgang",
    },
}


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CityOpsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create a reservations calendar per bank in the bank's subentry."""
    for asset_id, subentry in entry.subentries.items():
        if subentry.subentry_type == SUBENTRY_LOCKER_BANK:
            async_add_entities(
                [ReservationsCalendar(entry, asset_id, RESERVATIONS)], config_subentry_id=asset_id
            )


def loan_events(bank: LockerBank, loan: Loan, now: datetime, language: str) -> list[CalendarEvent]:
    """The pickup window and, once collected, the loan of one booking."""
    texts = SUMMARIES.get(language.split("-", maxsplit=1)[0], SUMMARIES["en"])
    compartment = bank.compartments.get(loan.compartment)
    item = compartment.spec.item if compartment else "?"
    names = {"item": item, "number": loan.compartment}
    # Every user reads calendars: who booked (borrower, reservation id) stays out of them.
    description = f"{texts['outcome']}: {loan.outcome}" if loan.outcome else ""
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
            summary=texts["overdue" if loan.overdue else "on_loan"].format(**names),
            description=description,
            location=location,
            uid=f"{uid}-loan",
            status=CalendarEventStatus.CONFIRMED,
        )
    )
    return events


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
        """Bookings overlapping the requested span."""
        return [
            event
            for event in self._events(dt_util.utcnow())
            if event.start_datetime_local < end_date and event.end_datetime_local > start_date
        ]
