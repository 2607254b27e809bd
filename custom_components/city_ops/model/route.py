"""What the crew did on the current tour: stops emptied by hand or skipped, by whom and why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

MAX_REASON = 200


class Outcome(StrEnum):
    """How a stop left the tour."""

    EMPTIED = "emptied"  # the crew emptied it and ticked the stop
    SKIPPED = "skipped"  # the crew could not empty it (a parked car, a locked gate)


@dataclass(frozen=True, slots=True)
class StopDone:
    """One stop the crew handled on a tour."""

    outcome: Outcome
    at: datetime
    by: str  # the crew member's user name, or "" when Home Assistant did not say
    reason: str = ""


class CrewRoute:
    """Stops handled on the current tour; a tour begins when the previous one's day is over.

    A skipped stop stays off the route until the next tour, then comes back while it is due.
    """

    def __init__(self) -> None:
        """Start without handled stops."""
        self.done: dict[str, StopDone] = {}

    def handled(self, tour_start: datetime) -> dict[str, StopDone]:
        """Stops handled since the tour began (older ones belong to an earlier tour)."""
        return {asset_id: stop for asset_id, stop in self.done.items() if stop.at >= tour_start}

    def empty(self, asset_id: str, at: datetime, by: str) -> StopDone:
        """The crew emptied a container."""
        stop = StopDone(Outcome.EMPTIED, at, by)
        self.done[asset_id] = stop
        return stop

    def skip(self, asset_id: str, at: datetime, by: str, reason: str) -> StopDone:
        """The crew could not empty a container; the reason is kept short."""
        stop = StopDone(Outcome.SKIPPED, at, by, reason.strip()[:MAX_REASON])
        self.done[asset_id] = stop
        return stop

    def forget_before(self, tour_start: datetime) -> None:
        """Drop what belongs to earlier tours."""
        self.done = self.handled(tour_start)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for storage."""
        return {
            asset_id: {
                "outcome": stop.outcome.value,
                "at": stop.at.isoformat(),
                "by": stop.by,
                "reason": stop.reason,
            }
            for asset_id, stop in self.done.items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CrewRoute:
        """Restore from storage; unreadable entries are left out."""
        route = cls()
        for asset_id, stop in data.items():
            try:
                route.done[asset_id] = StopDone(
                    Outcome(stop["outcome"]),
                    datetime.fromisoformat(stop["at"]),
                    str(stop.get("by", "")),
                    str(stop.get("reason", ""))[:MAX_REASON],
                )
            except KeyError, TypeError, ValueError:
                continue
        return route
