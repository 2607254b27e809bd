"""The crew's record of a tour: what was emptied or skipped, kept per tour, stored and restored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custom_components.city_ops.model.route import MAX_REASON, CrewRoute, Outcome

MORNING = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
TOUR_START = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)


def test_handled_stops_belong_to_the_tour_they_happened_on() -> None:
    route = CrewRoute()
    route.empty("a", MORNING, "Anna")
    route.skip("b", MORNING + timedelta(minutes=5), "", "  parked car  ")
    route.empty("old", TOUR_START - timedelta(minutes=1), "Ben")

    handled = route.handled(TOUR_START)

    assert sorted(handled) == ["a", "b"]
    assert handled["a"].outcome is Outcome.EMPTIED
    assert handled["a"].by == "Anna"
    assert handled["b"].outcome is Outcome.SKIPPED
    assert handled["b"].reason == "parked car"
    route.forget_before(TOUR_START)
    assert sorted(route.done) == ["a", "b"]


def test_a_long_reason_is_cut_and_the_last_word_on_a_stop_counts() -> None:
    route = CrewRoute()
    route.skip("a", MORNING, "", "x" * (MAX_REASON + 50))
    assert len(route.done["a"].reason) == MAX_REASON
    route.empty("a", MORNING + timedelta(hours=1), "Anna")
    assert route.done["a"].outcome is Outcome.EMPTIED


def test_round_trip_through_storage() -> None:
    route = CrewRoute()
    route.empty("a", MORNING, "Anna")
    route.skip("b", MORNING, "Ben", "gate locked")
    restored = CrewRoute.from_dict(route.to_dict())
    assert restored.done == route.done


@pytest.mark.parametrize(
    "stored",
    [
        {"outcome": "burnt", "at": MORNING.isoformat()},
        {"outcome": "emptied", "at": "yesterday"},
        {"outcome": "emptied"},
        {"at": MORNING.isoformat()},
        None,
        "emptied",
    ],
)
def test_unreadable_stored_stops_are_left_out(stored: Any) -> None:
    restored = CrewRoute.from_dict(
        {"bad": stored, "good": {"outcome": "skipped", "at": MORNING.isoformat(), "reason": "car"}}
    )
    assert sorted(restored.done) == ["good"]
    assert restored.done["good"].reason == "car"
