"""Light ahead of people: symmetric corridor vs direction-aware boosts, same run, demo park.

Walkers (about 1.4 m/s) and cyclists (6-7 m/s) cross the demo park's paths end to end
(config/demo_park.geojson, routes as the demo walks them). Each mast's PIR fires when a person
comes within its range, 1-2 s late. Both sides run the site's own lighting model on the same
people and the same PIR delays: `symmetric` boosts the corridor of 1 hop at every detection,
`direction-aware` first infers heading and speed (`Lighting.detect`) and lights ahead.

Measured per person, every 0.5 s: the share of the path within the next SIGHT_S seconds of
travel that lies under a mast already at boost level (commanded boost at least the profile's
transition up ago; a point of path belongs to its nearest mast on the route). Energy: the
model's own estimate (commanded level x rated power), all masts, whole run.

    .venv/bin/python bench/bench_corridor.py
    .venv/bin/python bench/bench_corridor.py --people 200 --seed 3
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
import random
import statistics
import sys

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import json  # noqa: E402

from custom_components.city_ops.model.lighting import (  # noqa: E402
    Lighting,
    LightingProfile,
    Mast,
    MastSpec,
)
from demo.park import load_masts, routes  # noqa: E402

DEMO_PARK = ROOT / "config" / "demo_park.geojson"
T0 = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
EVENING = time(19, 0)  # dark, outside the night window
STEP_S = 0.1
SAMPLE_EVERY = 5  # steps (0.5 s)
SIGHT_S = 8.0  # what a person needs to see lit ahead, in seconds of travel
PIR_RANGE_M = 8.0
PIR_DELAY_S = (1.0, 2.0)
OCCUPANCY_TIMEOUT_S = 30.0


@dataclass
class Person:
    kind: str
    route: list[str]
    speed: float
    start_s: float
    delays: list[float]
    lit: list[float] = field(default_factory=list)


def masts_from_file() -> dict[str, MastSpec]:
    collection = json.loads(DEMO_PARK.read_text(encoding="utf-8"))
    specs = {}
    for feature in collection["features"]:
        props = feature["properties"]
        if props.get("kind") != "mast":
            continue
        lon, lat = feature["geometry"]["coordinates"]
        specs[props["name"]] = MastSpec(
            name=props["name"],
            latitude=lat,
            longitude=lon,
            path=props.get("path", ""),
            rated_power_w=float(props.get("rated_power_w", 40)),
            neighbours=tuple(props.get("neighbours", ())),
            profile=LightingProfile(),
        )
    return specs


def people(count: int, seed: int, park_routes: list[list[str]]) -> list[Person]:
    rng = random.Random(seed)
    found = []
    start = 0.0
    for _ in range(count):
        cyclist = rng.random() < 0.4
        route = rng.choice(park_routes)
        found.append(
            Person(
                "cyclist" if cyclist else "walker",
                route,
                rng.uniform(6.0, 7.0) if cyclist else rng.uniform(1.2, 1.6),
                start,
                [rng.uniform(*PIR_DELAY_S) for _ in route],
            )
        )
        start += rng.uniform(60, 240)
    return found


class Side:
    """One way of lighting, run on the site's model."""

    def __init__(self, label: str, specs: dict[str, MastSpec], aware: bool) -> None:
        self.label = label
        self.aware = aware
        self.lighting = Lighting({name: Mast(spec) for name, spec in specs.items()})
        self.boost_since: dict[str, datetime] = {}
        self.lighting.tick(T0, sun_down=True)
        self.lighting.reconcile(T0, EVENING, sun_down=True)

    def motion(self, mast: str, now: datetime) -> None:
        if self.aware:
            self.lighting.detect(mast, now)
        self.boost(mast, now)

    def boost(self, mast: str, now: datetime) -> None:
        self.lighting.boost([mast], now)
        self.step(now)

    def step(self, now: datetime) -> None:
        for command in self.lighting.reconcile(now, EVENING, sun_down=True):
            if command.level >= self.lighting.masts[command.mast].spec.profile.boost_level:
                self.boost_since[command.mast] = now
            else:
                self.boost_since.pop(command.mast, None)

    def at_boost(self, mast: str, now: datetime) -> bool:
        since = self.boost_since.get(mast)
        ramp = self.lighting.masts[mast].spec.profile.transition_up_s
        return since is not None and (now - since).total_seconds() >= ramp


def run(args: argparse.Namespace) -> None:
    specs = masts_from_file()
    park_routes = routes(load_masts(DEMO_PARK))
    crowd = people(args.people, args.seed, park_routes)
    sides = [Side("symmetric corridor (1 hop)", specs, False), Side("direction-aware", specs, True)]
    graph = sides[0].lighting.graph
    # Position of each mast along each person's route.
    stations = []
    for person in crowd:
        at, marks = 0.0, [0.0]
        for here, there in zip(person.route, person.route[1:], strict=False):
            at += graph.length_m(here, there)
            marks.append(at)
        stations.append(marks)
    end_s = max(p.start_s + s[-1] / p.speed for p, s in zip(crowd, stations, strict=True)) + 180
    # PIR events: (time, mast, on/off) per person, the same for both sides.
    events: list[tuple[float, int, str, bool]] = []
    for number, (person, marks) in enumerate(zip(crowd, stations, strict=True)):
        for mast, mark, delay in zip(person.route, marks, person.delays, strict=True):
            enter = person.start_s + max(0.0, mark - PIR_RANGE_M) / person.speed
            leave = person.start_s + (mark + PIR_RANGE_M) / person.speed
            events.append((enter + delay, number, mast, True))
            events.append((leave + OCCUPANCY_TIMEOUT_S, number, mast, False))
    events.sort()
    seen: dict[tuple[int, str], bool] = {}
    steps = int(end_s / STEP_S)
    cursor = 0
    lit_by_side: list[dict[str, list[float]]] = [{"walker": [], "cyclist": []} for _ in sides]
    for step in range(steps):
        t = step * STEP_S
        now = T0 + timedelta(seconds=t)
        while cursor < len(events) and events[cursor][0] <= t:
            _, number, mast, on = events[cursor]
            cursor += 1
            if on and not seen.get((number, mast)):
                seen[(number, mast)] = True
                for side in sides:
                    side.motion(mast, now)
            elif not on:
                for side in sides:  # the blueprint's last boost when the motion ends
                    side.boost(mast, now)
        for side in sides:
            side.step(now)
        if step % SAMPLE_EVERY:
            continue
        for number, (person, marks) in enumerate(zip(crowd, stations, strict=True)):
            pos = (t - person.start_s) * person.speed
            if (
                pos < marks[0]
                or pos > marks[-1]
                or not any(seen.get((number, m)) for m in person.route[:1])
            ):
                continue
            ahead = person.speed * SIGHT_S
            points = [pos + ahead * k / 20 for k in range(21)]
            points = [p for p in points if p <= marks[-1]]
            for i, side in enumerate(sides):
                lit = sum(
                    side.at_boost(
                        person.route[min(range(len(marks)), key=lambda j: abs(marks[j] - p))], now
                    )
                    for p in points
                )
                lit_by_side[i][person.kind].append(lit / len(points))
    for side in sides:
        side.lighting.tick(T0 + timedelta(seconds=end_s), sun_down=True)
    walkers = sum(p.kind == "walker" for p in crowd)
    print(
        f"demo park: {len(specs)} masts, {len(park_routes)} routes; {walkers} walkers, "
        f"{len(crowd) - walkers} cyclists over {end_s / 3600:.2f} h; PIR range {PIR_RANGE_M:g} m, "
        f"delay {PIR_DELAY_S[0]:g}-{PIR_DELAY_S[1]:g} s; sight {SIGHT_S:g} s of travel; "
        f"lead {LightingProfile().lead_m:g} m or {LightingProfile().lead_s:g} s of travel"
    )
    header = f"{'side':<28} {'walkers lit ahead':>18} {'cyclists lit ahead':>19} {'energy Wh':>10}"
    print(header)
    print("-" * len(header))
    for side, lit in zip(sides, lit_by_side, strict=True):
        energy = side.lighting.energy_kwh() * 1000
        print(
            f"{side.label:<28} {100 * statistics.mean(lit['walker']):>17.2f}% "
            f"{100 * statistics.mean(lit['cyclist']):>18.2f}% {energy:>10.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
