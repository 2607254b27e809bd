"""The collection tour: visit due containers from the depot, nearest neighbour then 2-opt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class Stop:
    """A place the collection vehicle visits."""

    name: str
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class CollectionTour:
    """Stops in visiting order; the vehicle starts and ends at the depot."""

    depot: Stop
    stops: tuple[Stop, ...]
    length_m: float


def great_circle_m(a: Stop, b: Stop) -> float:
    """Haversine distance in metres."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _length(order: Sequence[int], dist: list[list[float]]) -> float:
    return sum(dist[order[i]][order[i + 1]] for i in range(len(order) - 1))


def plan_tour(depot: Stop, stops: Sequence[Stop], max_passes: int = 50) -> CollectionTour:
    """Order the stops as a closed tour from the depot (index 0) and back."""
    points = [depot, *stops]
    size = len(points)
    dist = [[great_circle_m(p, q) for q in points] for p in points]

    # Nearest neighbour; ties go to the earlier stop so the result is deterministic.
    order = [0]
    left = set(range(1, size))
    while left:
        here = order[-1]
        nearest = min(left, key=lambda j: (dist[here][j], j))
        order.append(nearest)
        left.remove(nearest)
    order.append(0)

    # 2-opt: reverse a segment whenever that shortens the closed tour.
    for _ in range(max_passes):
        improved = False
        for i in range(1, len(order) - 2):
            for k in range(i + 1, len(order) - 1):
                a, b = order[i - 1], order[i]
                c, d = order[k], order[k + 1]
                delta = dist[a][c] + dist[b][d] - dist[a][b] - dist[c][d]
                if delta < -1e-6:
                    order[i : k + 1] = reversed(order[i : k + 1])
                    improved = True
        if not improved:
            break
    return CollectionTour(
        depot=depot,
        stops=tuple(points[i] for i in order[1:-1]),
        length_m=round(_length(order, dist), 1),
    )
