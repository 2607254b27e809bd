"""Collection tour: the planner's time and tour length against the former planner, same stops.

The former planner (an n x n great-circle matrix, nearest neighbour, then 2-opt over every
pair until no pass improves) is kept here only as the yardstick; it is quadratic per pass
and takes minutes beyond a thousand stops, so it runs up to `--reference-max` stops.

    .venv/bin/python bench/bench_tour.py
    .venv/bin/python bench/bench_tour.py --sizes 100 2000 5000 --seeds 3
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
import random
import statistics
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.city_ops.model.tour import (
    Stop,
    great_circle_m,
    plan_tour,
)

DEPOT = Stop("depot", 53.7000, 10.0000)


def reference_length(depot: Stop, stops: Sequence[Stop], max_passes: int = 50) -> float:
    """Tour length of the former planner (exhaustive 2-opt on the full matrix)."""
    points = [depot, *stops]
    size = len(points)
    dist = [[great_circle_m(p, q) for q in points] for p in points]
    order = [0]
    left = set(range(1, size))
    while left:
        here = order[-1]
        nearest = min(left, key=lambda j: (dist[here][j], j))
        order.append(nearest)
        left.remove(nearest)
    order.append(0)
    for _ in range(max_passes):
        improved = False
        for i in range(1, len(order) - 2):
            for k in range(i + 1, len(order) - 1):
                a, b, c, d = order[i - 1], order[i], order[k], order[k + 1]
                if dist[a][c] + dist[b][d] - dist[a][b] - dist[c][d] < -1e-6:
                    order[i : k + 1] = reversed(order[i : k + 1])
                    improved = True
        if not improved:
            break
    return sum(dist[order[i]][order[i + 1]] for i in range(len(order) - 1))


def city(seed: int, count: int, clustered: bool) -> list[Stop]:
    """Stops over about 12 x 12 km around the depot; clustered ones sit in 40 neighbourhoods."""
    rnd = random.Random(seed)
    if not clustered:
        return [
            Stop(
                f"s{i}", DEPOT.latitude + rnd.uniform(-0.054, 0.054), 10 + rnd.uniform(-0.09, 0.09)
            )
            for i in range(count)
        ]
    centres = [(rnd.uniform(-0.05, 0.05), rnd.uniform(-0.085, 0.085)) for _ in range(40)]
    stops = []
    for i in range(count):
        lat, lon = centres[rnd.randrange(len(centres))]
        stops.append(
            Stop(
                f"s{i}", DEPOT.latitude + lat + rnd.gauss(0, 0.004), 10 + lon + rnd.gauss(0, 0.007)
            )
        )
    return stops


def main() -> int:
    """Print time and length per size; exit 1 if a tour misses a stop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 800, 2000, 5000])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--reference-max", type=int, default=800)
    args = parser.parse_args()
    print(
        f"{'stops':>6} {'layout':>9} {'plan s (median)':>16} {'plan s (max)':>13} "
        f"{'nn only':>9} {'vs former':>10} {'former s':>9}"
    )
    for size in args.sizes:
        for clustered in (False, True):
            times, ratios, nn_ratios, ref_times = [], [], [], []
            for seed in range(args.seeds):
                stops = city(seed, size, clustered)
                started = time.perf_counter()
                tour = plan_tour(DEPOT, stops)
                times.append(time.perf_counter() - started)
                if sorted(s.name for s in tour.stops) != sorted(s.name for s in stops):
                    print("a tour lost or repeated a stop", file=sys.stderr)
                    return 1
                nn_ratios.append(plan_tour(DEPOT, stops, max_passes=0).length_m / tour.length_m)
                if size <= args.reference_max:
                    started = time.perf_counter()
                    former = reference_length(DEPOT, stops)
                    ref_times.append(time.perf_counter() - started)
                    ratios.append(tour.length_m / former)
            vs = f"{statistics.median(ratios):.3f}" if ratios else "-"
            ref = f"{statistics.median(ref_times):.2f}" if ref_times else "-"
            print(
                f"{size:>6} {'clustered' if clustered else 'uniform':>9} "
                f"{statistics.median(times):>16.3f} {max(times):>13.3f} "
                f"{statistics.median(nn_ratios):>9.3f} {vs:>10} {ref:>9}"
            )
    print("vs former: new length / former length (median); nn only: nearest neighbour / new")
    return 0


if __name__ == "__main__":
    sys.exit(main())
