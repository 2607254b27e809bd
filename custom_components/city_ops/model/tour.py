"""The collection tour: visit due containers from the depot and back, short and fast to plan.

Thousands of stops rule out an n x n distance matrix. Stops are put on a local plane around
the depot and into grid cells; the tour is built by nearest neighbour through the grid, then
shortened by 2-opt and Or-opt moves tried only towards each stop's few nearest neighbours,
until nothing improves or the pass or time bound is reached. Lengths are great-circle metres.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math
import time

EARTH_RADIUS_M = 6_371_008.8
NEIGHBOURS = 10  # candidates per stop for local moves; more finds little, costs linearly
SEGMENT_MAX = 3  # Or-opt moves chains of up to this many stops
STOPS_PER_CELL = 2
EPSILON_M = 1e-6


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


def tour_length_m(depot: Stop, stops: Sequence[Stop]) -> float:
    """Length of the closed tour depot, stops in this order, depot; metres, one decimal."""
    path = [depot, *stops, depot]
    return round(sum(great_circle_m(path[k], path[k + 1]) for k in range(len(path) - 1)), 1)


def _plane(depot: Stop, points: Sequence[Stop]) -> tuple[list[float], list[float]]:
    """Metres east and north of the depot; within a city the error is a fraction of a percent."""
    lat0 = math.radians(depot.latitude)
    scale_x = EARTH_RADIUS_M * math.cos(lat0)
    xs, ys = [], []
    for point in points:
        dlon = (point.longitude - depot.longitude + 180.0) % 360.0 - 180.0
        xs.append(scale_x * math.radians(dlon))
        # Same subtraction as the haversine, so stops mirrored about the depot tie exactly.
        ys.append(EARTH_RADIUS_M * (math.radians(point.latitude) - lat0))
    return xs, ys


class _Grid:
    """Stops bucketed into square cells, for nearest-stop queries without an n x n matrix."""

    def __init__(self, xs: list[float], ys: list[float]) -> None:
        self.xs, self.ys = xs, ys
        count = len(xs)
        # Cells sized from the middle 90 % of the stops: a depot (or a stray stop) far off
        # would otherwise make the cells so large that every stop shares one.
        low, high = count // 20, count - 1 - count // 20
        sorted_x, sorted_y = sorted(xs), sorted(ys)
        area = max(sorted_x[high] - sorted_x[low], 1.0) * max(sorted_y[high] - sorted_y[low], 1.0)
        self.size = max(math.sqrt(area * STOPS_PER_CELL / (high - low + 1)), 1.0)
        self.min_x, self.min_y = sorted_x[0], sorted_y[0]
        self.cells: dict[tuple[int, int], list[int]] = {}
        for index in range(count):
            self.cells.setdefault(self.cell(index), []).append(index)
        # Past this many rings of cells a query reads the stops one by one: the rings grow
        # with the distance to a far-off stop, the stops do not.
        self.scan_after = math.isqrt(len(self.cells)) + 2

    def cell(self, index: int) -> tuple[int, int]:
        return (
            int((self.xs[index] - self.min_x) / self.size),
            int((self.ys[index] - self.min_y) / self.size),
        )

    def distance(self, index: int, other: int) -> float:
        return math.hypot(self.xs[other] - self.xs[index], self.ys[other] - self.ys[index])

    def nearest(self, index: int, count: int) -> list[int]:
        """Up to `count` other stops by distance (ties to the lower index), ring by ring."""
        cx, cy = self.cell(index)
        found: list[tuple[float, int]] = []
        for ring in range(self.scan_after + 1):
            for other in self._ring(cx, cy, ring):
                if other != index:
                    found.append((self.distance(index, other), other))
            # Everything outside this ring is farther than `ring` cells away.
            if len(found) >= count and sorted(found)[count - 1][0] <= ring * self.size:
                found.sort()
                return [other for _, other in found[:count]]
        found = [
            (self.distance(index, other), other)
            for members in self.cells.values()
            for other in members
            if other != index
        ]
        found.sort()
        return [other for _, other in found[:count]]

    def _ring(self, cx: int, cy: int, ring: int) -> list[int]:
        cells = self.cells
        if ring == 0:
            return cells.get((cx, cy), [])
        members: list[int] = []
        for dx in range(-ring, ring + 1):
            members += cells.get((cx + dx, cy - ring), [])
            members += cells.get((cx + dx, cy + ring), [])
        for dy in range(-ring + 1, ring):
            members += cells.get((cx - ring, cy + dy), [])
            members += cells.get((cx + ring, cy + dy), [])
        return members

    def take(self, index: int) -> None:
        cell = self.cell(index)
        members = self.cells[cell]
        members.remove(index)
        if not members:
            del self.cells[cell]

    def nearest_left(self, index: int) -> int:
        """The nearest stop still in the grid (ties to the lower index)."""
        cx, cy = self.cell(index)
        best: tuple[float, int] | None = None
        for ring in range(self.scan_after + 1):
            for other in self._ring(cx, cy, ring):
                candidate = (self.distance(index, other), other)
                if best is None or candidate < best:
                    best = candidate
            if best is not None and best[0] <= ring * self.size:
                return best[1]
        return min(
            (self.distance(index, other), other)
            for members in self.cells.values()
            for other in members
        )[1]


def _nearest_neighbour(grid: _Grid, count: int) -> list[int]:
    order = [0]
    grid.take(0)
    for _ in range(count - 1):
        nxt = grid.nearest_left(order[-1])
        grid.take(nxt)
        order.append(nxt)
    return order


class _Improver:
    """2-opt and Or-opt on a closed tour held as an array, moves limited to neighbour lists."""

    def __init__(
        self, order: list[int], xs: list[float], ys: list[float], neighbours: list[list[int]]
    ) -> None:
        self.order = order
        self.xs, self.ys = xs, ys
        self.neighbours = neighbours
        self.pos = [0] * len(order)
        for index, stop in enumerate(order):
            self.pos[stop] = index

    def d(self, a: int, b: int) -> float:
        return math.hypot(self.xs[a] - self.xs[b], self.ys[a] - self.ys[b])

    def succ(self, a: int) -> int:
        order = self.order
        return order[(self.pos[a] + 1) % len(order)]

    def pred(self, a: int) -> int:
        return self.order[self.pos[a] - 1]

    def _reverse(self, i: int, j: int) -> None:
        """Reverse the tour between positions i and j (inclusive, i may exceed j: wraps)."""
        order, pos, size = self.order, self.pos, len(self.order)
        inner = (j - i) % size + 1
        if inner * 2 > size:  # the other side is shorter: reversing it gives the same tour
            i, j = (j + 1) % size, (i - 1) % size
            inner = size - inner
        for _ in range(inner // 2):
            a, b = order[i], order[j]
            order[i], order[j] = b, a
            pos[b], pos[a] = i, j
            i = (i + 1) % size
            j = (j - 1) % size

    def two_opt(self, a: int) -> bool:
        """Replace edges (a, succ a) and (c, succ c) with (a, c) and (succ a, succ c)."""
        for forward in (True, False):
            b = self.succ(a) if forward else self.pred(a)
            ab = self.d(a, b)
            for c in self.neighbours[a]:
                ac = self.d(a, c)
                if ac >= ab - EPSILON_M:
                    break
                e = self.succ(c) if forward else self.pred(c)
                if c in (b, e) or e == a:
                    continue
                if ab + self.d(c, e) - ac - self.d(b, e) > EPSILON_M:
                    if forward:
                        self._reverse(self.pos[b], self.pos[c])
                    else:
                        self._reverse(self.pos[c], self.pos[b])
                    return True
        return False

    def or_opt(self, a: int) -> bool:
        """Move a chain of up to SEGMENT_MAX stops starting at a next to one of its neighbours."""
        order, pos, size = self.order, self.pos, len(self.order)
        for length in range(1, min(SEGMENT_MAX, size - 3) + 1):
            first = pos[a]
            chain = [order[(first + k) % size] for k in range(length)]
            prev, nxt = self.pred(chain[0]), self.succ(chain[-1])
            removed = self.d(prev, chain[0]) + self.d(chain[-1], nxt) - self.d(prev, nxt)
            if removed <= EPSILON_M:
                continue
            for c in self.neighbours[a]:
                if c in chain:
                    continue
                for left, right in ((c, self.succ(c)), (self.pred(c), c)):
                    if left in chain or right in chain:
                        continue
                    base = self.d(left, right)
                    # Insert as is (left, head..tail, right) or reversed.
                    straight = self.d(left, chain[0]) + self.d(chain[-1], right) - base
                    turned = self.d(left, chain[-1]) + self.d(chain[0], right) - base
                    if min(straight, turned) < removed - EPSILON_M:
                        self._move(chain, left, reverse=turned < straight)
                        return True
        return False

    def _move(self, chain: list[int], left: int, *, reverse: bool) -> None:
        moving = set(chain)
        order = [stop for stop in self.order if stop not in moving]
        at = order.index(left) + 1
        order[at:at] = chain[::-1] if reverse else chain
        self.order[:] = order
        for index, stop in enumerate(order):
            self.pos[stop] = index


def plan_tour(
    depot: Stop,
    stops: Sequence[Stop],
    max_passes: int = 50,
    time_budget_s: float = 0.8,
) -> CollectionTour:
    """Order the stops as a closed tour from the depot and back.

    `max_passes` bounds the local search (0: nearest neighbour only); `time_budget_s` stops it
    early on very large tours, keeping the best tour found so far.
    """
    points = [depot, *stops]
    size = len(points)
    if size == 1:
        return CollectionTour(depot=depot, stops=(), length_m=0.0)
    xs, ys = _plane(depot, points)
    grid = _Grid(xs, ys)
    neighbours = [grid.nearest(index, min(NEIGHBOURS, size - 1)) for index in range(size)]
    order = _nearest_neighbour(grid, size)
    if size >= 4 and max_passes > 0:
        improver = _Improver(order, xs, ys, neighbours)
        _improve(improver, max_passes, time.monotonic() + time_budget_s)
    start = order.index(0)
    visits = tuple(points[index] for index in order[start + 1 :] + order[:start])
    return CollectionTour(depot=depot, stops=visits, length_m=tour_length_m(depot, visits))


def _improve(improver: _Improver, max_passes: int, deadline: float) -> None:
    """Sweep the stops until no move shortens the tour ("don't look" bits skip settled ones)."""
    neighbours = improver.neighbours
    settled = [False] * len(improver.order)
    for _ in range(max_passes):
        improved = False
        for a in list(improver.order):
            if settled[a]:
                continue
            if improver.two_opt(a) or improver.or_opt(a):
                improved = True
                for stop in (a, improver.pred(a), improver.succ(a), *neighbours[a]):
                    settled[stop] = False
            else:
                settled[a] = True
            if time.monotonic() > deadline:
                return
        if not improved:
            return
