"""Collection tour: distances, closed tours from the depot, 2-opt against brute force."""

from __future__ import annotations

import itertools
import math
import random
import time

import pytest

from custom_components.city_ops.model.tour import (
    EARTH_RADIUS_M,
    CollectionTour,
    Stop,
    great_circle_m,
    plan_tour,
)

DEPOT = Stop("depot", 53.7000, 10.0000)  # Norderstedt


def _random_stops(seed: int, count: int, spread: float = 0.02) -> list[Stop]:
    rnd = random.Random(seed)
    return [
        Stop(
            f"bin-{seed}-{i}",
            DEPOT.latitude + rnd.uniform(-spread, spread),
            DEPOT.longitude + rnd.uniform(-spread, spread) * 1.7,
        )
        for i in range(count)
    ]


def _closed(tour: CollectionTour) -> list[Stop]:
    return [tour.depot, *tour.stops, tour.depot]


def _length(points: list[Stop]) -> float:
    return sum(great_circle_m(a, b) for a, b in itertools.pairwise(points))


def _optimum(depot: Stop, stops: list[Stop]) -> float:
    return min(_length([depot, *order, depot]) for order in itertools.permutations(stops))


def _xy(stop: Stop) -> tuple[float, float]:
    """Local plane (metres) around the depot; good enough to judge crossings in a park."""
    x = math.radians(stop.longitude - DEPOT.longitude) * math.cos(math.radians(DEPOT.latitude))
    y = math.radians(stop.latitude - DEPOT.latitude)
    return x * EARTH_RADIUS_M, y * EARTH_RADIUS_M


def _cross(p: Stop, q: Stop, r: Stop, s: Stop) -> bool:
    """Whether segment pq properly crosses segment rs."""
    (ax, ay), (bx, by), (cx, cy), (dx, dy) = _xy(p), _xy(q), _xy(r), _xy(s)

    def orient(ox: float, oy: float, px: float, py: float, qx: float, qy: float) -> float:
        return (px - ox) * (qy - oy) - (py - oy) * (qx - ox)

    d1 = orient(cx, cy, dx, dy, ax, ay)
    d2 = orient(cx, cy, dx, dy, bx, by)
    d3 = orient(ax, ay, bx, by, cx, cy)
    d4 = orient(ax, ay, bx, by, dx, dy)
    return d1 * d2 < 0 and d3 * d4 < 0


def _crossings(points: list[Stop]) -> int:
    edges = list(itertools.pairwise(points))
    return sum(
        _cross(*edges[i], *edges[j])
        for i in range(len(edges))
        for j in range(i + 2, len(edges))
        if not (i == 0 and j == len(edges) - 1)  # the two edges at the depot share it
    )


# -- distances -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "metres", "tolerance"),
    [
        pytest.param(
            Stop("Hamburg", 53.5511, 9.9937),
            Stop("Berlin", 52.5200, 13.4050),
            255_000,
            0.01,
            id="hamburg-berlin",
        ),
        pytest.param(
            Stop("Paris", 48.8566, 2.3522),
            Stop("London", 51.5074, -0.1278),
            343_500,
            0.01,
            id="paris-london",
        ),
        pytest.param(Stop("a", 0, 0), Stop("b", 0, 1), 111_195, 0.001, id="one-degree-equator"),
        pytest.param(Stop("a", 53.7, 10.0), Stop("b", 53.7, 10.0), 0, 0, id="same-place"),
        pytest.param(
            Stop("n", 90, 0), Stop("s", -90, 0), math.pi * EARTH_RADIUS_M, 1e-9, id="pole-to-pole"
        ),
        pytest.param(
            Stop("a", 0, 0), Stop("b", 0, 180), math.pi * EARTH_RADIUS_M, 1e-9, id="antipodes"
        ),
        pytest.param(Stop("w", 0, 179.9), Stop("e", 0, -179.9), 22_239, 0.001, id="date-line"),
    ],
)
def test_great_circle(a: Stop, b: Stop, metres: float, tolerance: float) -> None:
    assert great_circle_m(a, b) == pytest.approx(metres, rel=tolerance, abs=1e-6)
    assert great_circle_m(b, a) == pytest.approx(great_circle_m(a, b))


# -- tour shape ------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 3, 8, 25])
def test_tour_visits_each_stop_once_from_and_to_depot(count: int) -> None:
    stops = _random_stops(count, count)
    tour = plan_tour(DEPOT, stops)
    assert tour.depot == DEPOT
    assert sorted(tour.stops, key=lambda s: s.name) == sorted(stops, key=lambda s: s.name)
    assert len(tour.stops) == count
    assert tour.length_m == pytest.approx(_length(_closed(tour)), abs=0.1)


def test_empty_tour() -> None:
    tour = plan_tour(DEPOT, [])
    assert tour == CollectionTour(depot=DEPOT, stops=(), length_m=0.0)


def test_single_stop_is_there_and_back() -> None:
    stop = Stop("bin", 53.71, 10.0)
    tour = plan_tour(DEPOT, [stop])
    assert tour.stops == (stop,)
    assert tour.length_m == pytest.approx(2 * great_circle_m(DEPOT, stop), abs=0.1)


def test_stops_at_the_same_place() -> None:
    twin_a, twin_b = Stop("paper", 53.71, 10.01), Stop("glass", 53.71, 10.01)
    tour = plan_tour(DEPOT, [twin_a, twin_b, Stop("far", 53.72, 10.03)])
    assert set(tour.stops) == {twin_a, twin_b, Stop("far", 53.72, 10.03)}


# -- quality ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_two_opt_never_longer_than_nearest_neighbour(seed: int) -> None:
    stops = _random_stops(seed, 12)
    nearest_neighbour = plan_tour(DEPOT, stops, max_passes=0)
    improved = plan_tour(DEPOT, stops)
    assert improved.length_m <= nearest_neighbour.length_m
    assert _crossings(_closed(improved)) == 0


def test_two_opt_removes_crossing_of_nearest_neighbour() -> None:
    """Nearest neighbour grabs the close stops first and crosses its path on the way back."""
    stops = [
        Stop("a", 53.6974, 10.0007),
        Stop("b", 53.6987, 10.0017),
        Stop("c", 53.7013, 9.9930),
        Stop("d", 53.6951, 10.0054),
        Stop("e", 53.6976, 9.9957),
    ]
    nearest_neighbour = plan_tour(DEPOT, stops, max_passes=0)
    assert _crossings(_closed(nearest_neighbour)) > 0, "the case must trip nearest neighbour"
    improved = plan_tour(DEPOT, stops)
    assert _crossings(_closed(improved)) == 0
    assert improved.length_m < nearest_neighbour.length_m
    assert improved.length_m == pytest.approx(_optimum(DEPOT, stops), abs=0.1)


@pytest.mark.parametrize(("seed", "count"), [(seed, 3 + seed % 5) for seed in range(30)])
def test_two_opt_close_to_brute_force(seed: int, count: int) -> None:
    stops = _random_stops(100 + seed, count)
    tour = plan_tour(DEPOT, stops)
    optimum = _optimum(DEPOT, stops)
    assert optimum - 0.1 <= tour.length_m <= optimum * 1.10


@pytest.mark.parametrize("count", [3, 5, 7])
def test_convex_case_is_optimal(count: int) -> None:
    """Depot and stops on a circle: the optimum walks around it, and 2-opt finds that."""
    rnd = random.Random(count)
    angles = sorted(rnd.uniform(0.3, 2 * math.pi - 0.3) for _ in range(count))
    rnd.shuffle(angles)  # hand them to the planner in no useful order
    radius = 0.01
    centre = (DEPOT.latitude, DEPOT.longitude + radius / math.cos(math.radians(DEPOT.latitude)))
    stops = [
        Stop(
            f"ring-{i}",
            centre[0] + radius * math.sin(angle),
            centre[1] - radius * math.cos(angle) / math.cos(math.radians(DEPOT.latitude)),
        )
        for i, angle in enumerate(angles)
    ]
    tour = plan_tour(DEPOT, stops)
    assert tour.length_m == pytest.approx(_optimum(DEPOT, stops), abs=0.1)
    assert _crossings(_closed(tour)) == 0


# -- determinism -----------------------------------------------------------------------------


def test_deterministic() -> None:
    stops = _random_stops(7, 30)
    first = plan_tour(DEPOT, stops)
    assert all(plan_tour(DEPOT, list(stops)) == first for _ in range(5))


@pytest.mark.parametrize(("first", "second"), [("n", "s"), ("s", "n")])
def test_ties_go_to_the_earlier_stop(first: str, second: str) -> None:
    """North and south are exactly as far from the depot: the one listed first wins."""
    offsets = {"n": 0.001, "s": -0.001}
    stops = [
        Stop(first, DEPOT.latitude + offsets[first], DEPOT.longitude),
        Stop(second, DEPOT.latitude + offsets[second], DEPOT.longitude),
        Stop("e", DEPOT.latitude, DEPOT.longitude + 0.002),
        Stop("w", DEPOT.latitude, DEPOT.longitude - 0.002),
    ]
    assert great_circle_m(DEPOT, stops[0]) == great_circle_m(DEPOT, stops[1])
    assert plan_tour(DEPOT, stops, max_passes=0).stops[0].name == first
    assert len({plan_tour(DEPOT, stops) for _ in range(5)}) == 1


def test_a_far_off_depot_or_stray_stop_does_not_make_it_quadratic() -> None:
    """A depot 1,000 km away and a stop mistyped at 0°, 0°: cells stay sized to the city."""
    stops = [*_random_stops(7, 2_000, spread=0.05), Stop("typo", 0.0, 0.0)]
    far_depot = Stop("depot", 62.7, 10.0)
    started = time.process_time()
    tour = plan_tour(far_depot, stops, max_passes=0)
    spent = time.process_time() - started
    assert sorted(stop.name for stop in tour.stops) == sorted(stop.name for stop in stops)
    # One shared cell makes each of the 2,001 queries read all stops: about 5 s here.
    assert spent < 2.0, f"{spent:.2f} s"
