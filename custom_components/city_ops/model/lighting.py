"""Park lighting: profiles, the mast graph, boosts that lead walkers, faults, energy."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
import heapq
import math
from typing import Any

from ..sources.reading import Reading
from .container import stored_time

FAULT_POWER_SHARE = 0.05  # below 5 % of what the commanded level needs: lamp failure
HIGH_POWER_SHARE = 1.3  # above 130 % of it (plus the driver's standby): power too high
STANDBY_W = 2.0  # what a driver may draw with the lamp off or dimmed to nothing
FAULT_GRACE = timedelta(minutes=2)  # how long a condition must hold before it is a fault
# Meters report late and lamps ramp: a power report this soon after a level change is no
# evidence either way (it neither raises nor clears a suspicion).
SETTLE = timedelta(seconds=20)
CONFIRM_WITHIN = timedelta(seconds=10)  # a luminaire answers a command within this
REASK_EVERY = timedelta(minutes=1)  # an unanswered luminaire is asked again at most this often
REPAIR_AFTER = timedelta(days=1)  # a lamp faulty this long gets a repair issue
# Direction: successive detections at neighbouring masts this fast are one person moving.
# Slower than anyone walks is someone else's earlier motion (taken for a 0.3-0.4 m/s stroll it
# turned a walker entering the park the wrong way round).
MIN_SPEED_MPS = 0.5
MAX_SPEED_MPS = 15.0
HEADING_KEPT = timedelta(minutes=15)  # a boost of the same motion episode keeps its heading
MIN_RENEW = timedelta(seconds=1)  # a boost held by motion is renewed at most this often
EARTH_RADIUS_M = 6_371_000


@dataclass(slots=True)
class Follow:
    """A boost held up while the motion that caused it goes on (see `Lighting.boost`)."""

    hops: int | None
    hold_s: float | None
    renew_at: datetime  # renewed every half hold, before the boosts it made run out
    until: datetime  # motion going on longer than this is taken for a stuck sensor


class FaultKind(StrEnum):
    """What is wrong with a mast, in TALQ LampMonitor's terms."""

    LAMP_FAILURE = "lamp_failure"
    DAY_BURNER = "day_burner"
    NO_COMMUNICATION = "no_communication"
    POWER_TOO_HIGH = "power_too_high"


@dataclass(frozen=True, slots=True)
class LightingProfile:
    """How a site's masts light the paths; every value can be overridden per mast."""

    base_level: float = 30.0  # % while dark and nobody is there
    boost_level: float = 100.0  # % while someone is there
    hold_s: int = 120  # how long a boost lasts after the last motion
    corridor_hops: int = 1  # neighbours lit around a walker whose direction is unknown
    # Once the direction is known: lit ahead = max(lead_m, speed x lead_s) metres along the
    # paths (at least the next mast of each way ahead), behind = behind_m metres.
    lead_m: float = 50.0
    lead_s: float = 20.0
    behind_m: float = 0.0
    transition_up_s: float = 1.0
    transition_down_s: float = 5.0
    night_start: time = time(23, 30)
    night_end: time = time(5, 0)
    night_level: float = 10.0  # % base level inside the night window (0 allowed)
    warm_kelvin: int = 0  # colour temperature in the night window; 0 keeps the lamp's own
    lux_threshold: float = 20.0  # darker than this (where a light sensor exists) counts as dark

    def with_overrides(self, overrides: Mapping[str, Any]) -> LightingProfile:
        """Return this profile with a mast's own values where it has any."""
        known = {key: value for key, value in overrides.items() if value is not None}
        return replace(self, **known) if known else self

    def in_night_window(self, local: time) -> bool:
        """Whether a local time falls in the night window (which may cross midnight)."""
        start, end = self.night_start, self.night_end
        if start == end:
            return False
        if start < end:
            return start <= local < end
        return local >= start or local < end


@dataclass(frozen=True, slots=True)
class MastSpec:
    """What the city knows about a mast."""

    name: str
    latitude: float
    longitude: float
    path: str = ""
    rated_power_w: float = 40.0
    neighbours: tuple[str, ...] = ()
    profile: LightingProfile = field(default_factory=LightingProfile)


@dataclass(frozen=True, slots=True)
class Command:
    """Set a mast's luminaire to a level (0 = off) over a transition."""

    mast: str
    level: float
    transition_s: float
    kelvin: int = 0


@dataclass(frozen=True, slots=True)
class Heading:
    """Where a person seen at a mast came from, and how fast they moved."""

    came_from: str
    speed_mps: float


@dataclass(frozen=True, slots=True)
class Movement:
    """Someone moving past a mast, as operators and automations see it."""

    came_from: str
    speed_mps: float
    bearing_deg: float  # compass direction of travel: 0 north, 90 east


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Compass direction from the first point to the second (equirectangular, like distance_m)."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return math.degrees(math.atan2(x, y)) % 360


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Ground distance between two points (equirectangular: masts stand metres apart)."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return EARTH_RADIUS_M * math.hypot(x, y)


class MastGraph:
    """Which masts neighbour which; always symmetric, whatever one side declared."""

    def __init__(self, specs: Iterable[MastSpec]) -> None:
        """Build the undirected graph; neighbours that are not masts of the site are ignored."""
        self._edges: dict[str, set[str]] = {}
        specs = list(specs)
        names = {spec.name for spec in specs}
        self._where = {spec.name: (spec.latitude, spec.longitude) for spec in specs}
        for spec in specs:
            self._edges.setdefault(spec.name, set())
            for other in spec.neighbours:
                if other in names and other != spec.name:
                    self._edges[spec.name].add(other)
                    self._edges.setdefault(other, set()).add(spec.name)

    def neighbours(self, name: str) -> set[str]:
        """Direct neighbours of a mast."""
        return set(self._edges.get(name, ()))

    def length_m(self, one: str, other: str) -> float:
        """Length of the path between two masts (straight, as masts stand along paths)."""
        return distance_m(*self._where[one], *self._where[other])

    def ahead(self, start: str, came_from: str, lead_m: float) -> set[str]:
        """Masts within `lead_m` along every way on from `start` that does not go back.

        The next mast of each way ahead is always included: a lead shorter than the spacing
        of the masts must not leave the way ahead dark.
        """
        if start not in self._edges:
            return set()
        found: dict[str, float] = {}
        queue = [(self.length_m(start, first), first) for first in self._edges[start]]
        queue = [item for item in queue if item[1] != came_from]
        heapq.heapify(queue)
        first_masts = {name for _, name in queue}
        while queue:
            metres, here = heapq.heappop(queue)
            if here in found or here == start:
                continue
            if metres > lead_m and here not in first_masts:
                continue
            found[here] = metres
            for other in self._edges[here]:
                if other not in found and other not in (start, came_from):
                    heapq.heappush(queue, (metres + self.length_m(here, other), other))
        return set(found)

    def within(self, start: str, metres: float, towards: str | None = None) -> set[str]:
        """Masts within `metres` of `start` along the paths (only via `towards` if given)."""
        if start not in self._edges or metres <= 0:
            return set()
        firsts = self._edges[start] if towards is None else {towards} & self._edges[start]
        queue = [(self.length_m(start, first), first) for first in firsts]
        heapq.heapify(queue)
        found: set[str] = set()
        while queue:
            length, here = heapq.heappop(queue)
            if here in found or here == start or length > metres:
                continue
            found.add(here)
            for other in self._edges[here]:
                if other not in found:
                    heapq.heappush(queue, (length + self.length_m(here, other), other))
        return found

    def corridor(self, start: str, hops: int) -> dict[str, int]:
        """Masts within `hops` of `start`, with their distance in hops (breadth first)."""
        if start not in self._edges:
            return {}
        found = {start: 0}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            if found[here] >= hops:
                continue
            for other in sorted(self._edges[here]):
                if other not in found:
                    found[other] = found[here] + 1
                    queue.append(other)
        return found


@dataclass(slots=True)
class MastStatus:
    """What a mast reported and what it was told; persisted between restarts."""

    on: bool | None = None
    brightness: float | None = None  # 0-254 as reported
    motion: bool | None = None
    illuminance_lx: float | None = None
    power_w: float | None = None  # measured
    energy_kwh: float = 0.0  # measured counter if the device has one, else our estimate
    measured_energy: bool = False
    boost_until: datetime | None = None
    commanded_level: float | None = None
    commanded_kelvin: int = 0
    commanded_at: datetime | None = None
    luminaire_seen: datetime | None = None  # last report of the luminaire itself
    last_seen: datetime | None = None
    # For the estimate: the level in force since `level_since`.
    level_since: datetime | None = None
    meter_kwh: float | None = None  # last counter value of a metering device
    override_level: float | None = None  # set by hand (light entity); wins until it expires
    override_until: datetime | None = None
    # The full-power reference over the same intervals as `energy_kwh` (rated power while
    # dark), and whether the mast counted as dark in the interval now running.
    reference_kwh: float = 0.0
    dark: bool = False
    level_changed_at: datetime | None = None  # the commanded level last changed
    unconfirmed_since: datetime | None = None  # first command the luminaire did not answer
    reasked_at: datetime | None = None  # the luminaire was last asked for its state
    offline_since: datetime | None = None  # Zigbee2MQTT says the device is offline
    # Since when each fault condition holds (suspected), and the faults it became.
    suspected: dict[FaultKind, datetime] = field(default_factory=dict)
    faults: dict[FaultKind, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FaultChange:
    """A fault raised or cleared at a mast."""

    mast: str
    kind: FaultKind
    since: datetime
    active: bool


class Mast:
    """One mast's decisions: the level its profile wants, estimated power, faults."""

    def __init__(self, spec: MastSpec, status: MastStatus | None = None) -> None:
        """Start from a spec and, after a restart, the persisted status."""
        self.spec = spec
        self.status = status or MastStatus()

    def apply(self, reading: Reading, now: datetime) -> None:
        """Fold a report of the luminaire or of the mast's sensors into the status."""
        status = self.status
        self.accumulate(now)
        status.last_seen = now
        if reading.on is not None or reading.brightness is not None or reading.power_w is not None:
            status.luminaire_seen = now
            status.unconfirmed_since = None
        if reading.on is not None:
            status.on = reading.on
        if reading.brightness is not None:
            status.brightness = reading.brightness
        if reading.occupancy is not None:
            status.motion = reading.occupancy
        if reading.illuminance_lx is not None:
            status.illuminance_lx = reading.illuminance_lx
        if reading.power_w is not None:
            status.power_w = reading.power_w
            self._judge_power(reading.power_w, now)
        if reading.energy_kwh is not None:
            # Count what the meter added; a reset or a replaced meter starts a new baseline.
            if status.meter_kwh is not None and reading.energy_kwh >= status.meter_kwh:
                status.energy_kwh += reading.energy_kwh - status.meter_kwh
            status.meter_kwh = reading.energy_kwh
            status.measured_energy = True

    def override(self, level: float, now: datetime, hold: timedelta) -> None:
        """A person set the lamp by hand: keep that level for a while, then the profile again."""
        self.status.override_level = level
        self.status.override_until = now + hold

    def boosted(self, now: datetime) -> bool:
        """Whether a boost holds the mast up now."""
        until = self.status.boost_until
        return until is not None and until > now

    def is_dark(self, sun_down: bool) -> bool:
        """Dark = the sun is down, or the mast's light sensor reads under the threshold."""
        lux = self.status.illuminance_lx
        if lux is not None:
            return lux < self.spec.profile.lux_threshold
        return sun_down

    def wanted(self, now: datetime, local: time, sun_down: bool) -> tuple[float, int]:
        """The level (and colour temperature) the profile wants for this moment."""
        profile = self.spec.profile
        status = self.status
        if status.override_until is not None and status.override_until > now:
            return status.override_level or 0.0, 0
        if not self.is_dark(sun_down):
            return 0.0, 0
        night = profile.in_night_window(local)
        kelvin = profile.warm_kelvin if night else 0
        if self.boosted(now):
            return profile.boost_level, kelvin
        return (profile.night_level if night else profile.base_level), kelvin

    def power_w(self) -> tuple[float, bool]:
        """Power now and whether it was measured (else estimated from the level)."""
        status = self.status
        if status.power_w is not None:
            return status.power_w, True
        return self.spec.rated_power_w * self.level() / 100, False

    def level(self) -> float:
        """The luminaire's level in % as reported, else as last commanded."""
        status = self.status
        if status.on is False:
            return 0.0
        if status.brightness is not None:
            return round(status.brightness * 100 / 254, 1)
        if status.on is True:
            return status.commanded_level if status.commanded_level is not None else 100.0
        return status.commanded_level or 0.0

    def accumulate(self, now: datetime, dark: bool | None = None) -> None:
        """Integrate energy (estimated unless metered) and the reference up to now.

        Both grow over the same intervals, so their ratio does not depend on when it is read.
        `dark` is the darkness from now on, where the caller knows it.
        """
        status = self.status
        # A lamp nobody told or heard yet (a new mast before its first command) would count
        # as 0 W against a full reference, a saving that never happened: neither counts.
        known = (
            status.measured_energy
            or status.power_w is not None
            or status.on is not None
            or status.commanded_level is not None
        )
        if known and status.level_since is not None and now > status.level_since:
            hours = (now - status.level_since).total_seconds() / 3600
            if not status.measured_energy:
                watts, _ = self.power_w()
                status.energy_kwh += watts * hours / 1000
            if status.dark:
                status.reference_kwh += self.spec.rated_power_w * hours / 1000
        if status.level_since is None or now >= status.level_since:
            status.level_since = now
        if dark is not None:
            status.dark = dark

    def expected_w(self) -> float:
        """What the lamp needs at the level commanded."""
        return self.spec.rated_power_w * (self.status.commanded_level or 0) / 100

    def _settled(self, now: datetime) -> bool:
        changed = self.status.level_changed_at
        return changed is None or now - changed >= SETTLE

    def _judge_power(self, watts: float, now: datetime) -> None:
        """Raise or clear the power suspicions from a settled power report."""
        if not self._settled(now) or self.status.commanded_level is None:
            return
        expected = self.expected_w()
        low = expected > 0 and watts < FAULT_POWER_SHARE * expected
        high = expected > 0 and watts > HIGH_POWER_SHARE * expected + STANDBY_W
        self._suspect(FaultKind.LAMP_FAILURE, low, now, keep_if_off=True)
        self._suspect(FaultKind.POWER_TOO_HIGH, high, now)

    def _suspect(
        self, kind: FaultKind, holds: bool, now: datetime, keep_if_off: bool = False
    ) -> None:
        suspected = self.status.suspected
        if holds:
            suspected.setdefault(kind, now)
        elif not (keep_if_off and (self.status.commanded_level or 0) <= 0):
            # Commanded off, a dead lamp draws nothing like a good one: that proves nothing.
            suspected.pop(kind, None)

    def needs_reask(self, now: datetime) -> bool:
        """Whether the luminaire left a command unanswered and should be asked for its state."""
        status = self.status
        since = status.unconfirmed_since
        if since is None or now - since < CONFIRM_WITHIN:
            return False
        asked = status.reasked_at
        return asked is None or asked < since or now - asked >= REASK_EVERY

    def reasked(self, now: datetime) -> None:
        """The luminaire was asked for its state."""
        self.status.reasked_at = now

    def set_online(self, online: bool, now: datetime) -> bool:
        """Zigbee2MQTT's availability; True when it changed."""
        status = self.status
        if online == (status.offline_since is None):
            return False
        status.offline_since = None if online else now
        if online:
            # Commands and questions sent while it was away could not be heard: their silence
            # is the offline fault, which ends here. Only a new silence (the level it is told
            # now, asked again) makes it a no-communication fault again.
            status.unconfirmed_since = None
            status.reasked_at = None
            status.suspected.pop(FaultKind.NO_COMMUNICATION, None)
        return True

    @property
    def online(self) -> bool:
        """Whether the device is reachable as far as Zigbee2MQTT knows."""
        return self.status.offline_since is None

    def check_faults(self, now: datetime, sun_down: bool) -> list[FaultChange]:
        """Judge every fault kind now; return the faults raised and cleared.

        A condition becomes a fault once it has held for FAULT_GRACE. Its start is the
        evidence (the first low power report, the first unanswered command), so neither a
        boost nor re-commanding the same level restarts the grace.
        """
        status = self.status
        since = status.unconfirmed_since
        asked = status.reasked_at
        # Asked again after the command, and given CONFIRM_WITHIN to answer that.
        silent = (
            since is not None
            and asked is not None
            and asked >= since
            and now - asked >= CONFIRM_WITHIN
        )
        if status.offline_since is not None:
            status.suspected[FaultKind.NO_COMMUNICATION] = min(
                status.offline_since,
                status.suspected.get(FaultKind.NO_COMMUNICATION, status.offline_since),
            )
        elif silent and since is not None:
            status.suspected.setdefault(FaultKind.NO_COMMUNICATION, since)
        else:
            status.suspected.pop(FaultKind.NO_COMMUNICATION, None)
        burning = status.on is True and (status.brightness is None or status.brightness > 0)
        self._suspect(
            FaultKind.DAY_BURNER,
            self._settled(now)
            and (status.commanded_level is not None and status.commanded_level <= 0)
            and not self.is_dark(sun_down)
            and (burning or (status.power_w or 0) > STANDBY_W),
            now,
        )
        changes = []
        for kind in FaultKind:
            started = status.suspected.get(kind)
            # Zigbee2MQTT has already waited before it calls a device offline.
            offline = kind is FaultKind.NO_COMMUNICATION and status.offline_since is not None
            grace = timedelta(0) if offline else FAULT_GRACE
            active = started is not None and now - started >= grace
            if active and kind not in status.faults and started is not None:
                status.faults[kind] = started
                changes.append(FaultChange(self.spec.name, kind, started, True))
            elif not active and kind in status.faults:
                changes.append(FaultChange(self.spec.name, kind, status.faults.pop(kind), False))
        return changes

    def fault(self) -> tuple[FaultKind, datetime] | None:
        """The mast's oldest fault and since when, if it has any."""
        faults = self.status.faults
        if not faults:
            return None
        kind = min(faults, key=lambda k: faults[k])
        return kind, faults[kind]


class Lighting:
    """All masts of a site: boosts, reconciliation to the profile, commands to send."""

    def __init__(self, masts: Mapping[str, Mast]) -> None:
        """Masts by name; the graph follows their declared neighbours."""
        self.masts = dict(masts)
        self._graph: MastGraph | None = None
        self.last_tick: datetime | None = None
        # Energy and reference as of the last tick (the site's, and each path's: "" for masts
        # on no path), and when counting began.
        self.counted: tuple[float, float] = (0.0, 0.0)
        self.counted_by_path: dict[str, tuple[float, float]] = {}
        self.counting_since: datetime | None = None
        self.detections: dict[str, datetime] = {}  # mast -> its latest motion start
        self.headings: dict[str, Heading | None] = {}  # heading inferred at that detection
        # Detections a later one already followed on from: that person has moved on.
        self.followed: set[str] = set()
        # Boosts held while the motion at a mast goes on, by the mast that saw it.
        self.follows: dict[str, Follow] = {}

    @property
    def graph(self) -> MastGraph:
        """The neighbour graph, built anew after masts were added, changed or removed."""
        if self._graph is None:
            self._graph = MastGraph(mast.spec for mast in self.masts.values())
        return self._graph

    def put(self, mast: Mast, old_name: str | None = None) -> None:
        """Add a mast, or follow a changed one (renamed from `old_name`); the graph follows.

        Neighbours are declared on both sides, so a mast added to a path changes the
        corridors of the masts it names: the graph is built again, not patched.
        """
        if old_name is not None and old_name != mast.spec.name:
            self.remove(old_name)
        self.masts[mast.spec.name] = mast
        self._graph = None

    def remove(self, name: str) -> None:
        """Forget a mast, and the motion seen at it (nobody walks on from a mast that is gone)."""
        self.masts.pop(name, None)
        self.detections.pop(name, None)
        self.headings.pop(name, None)
        self.followed.discard(name)
        self.follows.pop(name, None)
        for other, heading in self.headings.items():
            if heading is not None and heading.came_from == name:
                self.headings[other] = None  # a direction from nowhere is no direction
        self._graph = None

    @property
    def reference_kwh(self) -> float:
        """Energy all masts would have used at full power while dark, as of the last tick."""
        return self.counted[1]

    # -- direction ------------------------------------------------------------------------

    def detect(self, name: str, now: datetime) -> Heading | None:
        """A new motion at a mast: infer where the person came from and how fast.

        One neighbour that saw motion shortly before, at a walking or cycling pace, is where
        they came from. None (no neighbour, or several: two people meeting, a crowd at a
        crossing) leaves the direction unknown. A neighbour whose own motion came from this
        mast saw someone walking away, not someone coming here.
        """
        if name not in self.masts:
            return None
        candidates = []
        for other in self.graph.neighbours(name):
            seen = self.detections.get(other)
            if seen is None or seen >= now or other in self.followed:
                continue
            before = self.headings.get(other)
            if before is not None and before.came_from == name:
                continue
            speed = self.graph.length_m(other, name) / (now - seen).total_seconds()
            if MIN_SPEED_MPS <= speed <= MAX_SPEED_MPS:
                candidates.append(Heading(other, speed))
        heading = candidates[0] if len(candidates) == 1 else None
        self.detections[name] = now
        self.headings[name] = heading
        self.followed.discard(name)
        if heading is not None:
            self.followed.add(heading.came_from)
        return heading

    def heading(self, name: str, now: datetime) -> Heading | None:
        """The heading of the motion episode under way at a mast, if one is known."""
        seen = self.detections.get(name)
        if seen is None or now - seen > HEADING_KEPT:
            return None
        return self.headings.get(name)

    def movement(self, name: str, now: datetime) -> Movement | None:
        """Where the person under way at a mast is heading, if that is known."""
        heading = self.heading(name, now)
        if heading is None:
            return None
        here, there = self.masts[name].spec, self.masts[heading.came_from].spec
        return Movement(
            heading.came_from,
            heading.speed_mps,
            bearing_deg(there.latitude, there.longitude, here.latitude, here.longitude),
        )

    def lit_for(self, name: str, now: datetime, hops: int | None = None) -> set[str]:
        """The masts a motion at `name` lights: ahead of the person, else the corridor."""
        mast = self.masts[name]
        profile = mast.spec.profile
        radius = profile.corridor_hops if hops is None else hops
        heading = self.heading(name, now)
        if heading is None:
            return set(self.graph.corridor(name, radius))
        lead = max(profile.lead_m, heading.speed_mps * profile.lead_s)
        ahead = self.graph.ahead(name, heading.came_from, lead)
        if not ahead:
            # A dead end: whoever walked into it comes back the way they came.
            return set(self.graph.corridor(name, radius))
        lit = {
            name,
            *ahead,
            *self.graph.within(name, profile.behind_m, towards=heading.came_from),
        }
        if len(self.graph.neighbours(heading.came_from)) == 1:
            # The path's end behind is where the next person enters, with no direction known
            # yet: it stays lit as long as the corridor would keep it.
            lit.add(heading.came_from)
        return lit

    def boost(
        self,
        names: Iterable[str],
        now: datetime,
        hops: int | None = None,
        hold_s: float | None = None,
        follow_until: datetime | None = None,
    ) -> list[str]:
        """Hold the masts and what they light at boost; a boost never shortens an earlier one.

        `hops` is the corridor where the direction is unknown. With `follow_until`, the boost
        of a mast whose motion sensor reports motion now is held for as long as the motion
        goes on (renewed every half hold) and its hold counts from the end of the motion
        (`motion_ended`); motion going on past `follow_until` is taken for a stuck sensor.
        """
        touched: dict[str, None] = {}
        for name in names:
            mast = self.masts.get(name)
            if mast is None:
                continue
            for other in sorted(self.lit_for(name, now, hops)):
                target = self.masts[other]
                hold = target.spec.profile.hold_s if hold_s is None else hold_s
                until = now + timedelta(seconds=hold)
                current = target.status.boost_until
                if current is None or until > current:
                    target.status.boost_until = until
                touched[other] = None
            if follow_until is not None and mast.status.motion is True:
                earlier = self.follows.get(name)
                self.follows[name] = Follow(
                    hops,
                    hold_s,
                    now + self._renew_every(mast, hold_s),
                    earlier.until if earlier is not None else follow_until,
                )
        return list(touched)

    @staticmethod
    def _renew_every(mast: Mast, hold_s: float | None) -> timedelta:
        hold = mast.spec.profile.hold_s if hold_s is None else hold_s
        return max(timedelta(seconds=hold / 2), MIN_RENEW)

    def motion_ended(self, name: str, now: datetime) -> list[str]:
        """The motion holding a boost ended (or its sensor went away): the hold counts from now."""
        follow = self.follows.pop(name, None)
        if follow is None:
            return []
        return self.boost([name], now, follow.hops, follow.hold_s)

    def renew(self, now: datetime) -> list[str]:
        """Renew the boosts held by motion that goes on, before they run out.

        A motion that ended unseen lets its boost go with one last boost, as does a motion
        going on past its limit (a stuck sensor): its masts return to the profile after the
        hold, and the sensor's next new motion boosts again.
        """
        touched: dict[str, None] = {}
        for name, follow in list(self.follows.items()):
            if follow.renew_at > now:
                continue
            mast = self.masts[name]
            if mast.status.motion is not True or now >= follow.until:
                del self.follows[name]
            else:
                follow.renew_at = now + self._renew_every(mast, follow.hold_s)
            touched.update(dict.fromkeys(self.boost([name], now, follow.hops, follow.hold_s)))
        return list(touched)

    # -- levels ---------------------------------------------------------------------------

    def reconcile(
        self, now: datetime, local: time, sun_down: bool, names: Iterable[str] | None = None
    ) -> list[Command]:
        """Commands that bring masts to what the profile wants now (only those that differ)."""
        commands = []
        for name in self.masts if names is None else names:
            mast = self.masts[name]
            status = mast.status
            level, kelvin = mast.wanted(now, local, sun_down)
            if (
                status.commanded_level is not None
                and abs(status.commanded_level - level) < 0.5
                and status.commanded_kelvin == kelvin
            ):
                continue
            commands.append(self.command(mast, level, kelvin, now, sun_down))
        return commands

    def command(
        self, mast: Mast, level: float, kelvin: int, now: datetime, sun_down: bool | None = None
    ) -> Command:
        """Tell a mast's luminaire a level; the luminaire is expected to answer."""
        status = mast.status
        profile = mast.spec.profile
        rising = status.commanded_level is None or level > status.commanded_level
        transition = profile.transition_up_s if rising else profile.transition_down_s
        mast.accumulate(now, None if sun_down is None else mast.is_dark(sun_down))
        if status.commanded_level is None or abs(status.commanded_level - level) >= 0.5:
            status.level_changed_at = now
        status.commanded_level = level
        status.commanded_kelvin = kelvin
        status.commanded_at = now
        if status.unconfirmed_since is None:
            status.unconfirmed_since = now
        return Command(mast.spec.name, level, transition, kelvin)

    def next_expiry(self, now: datetime) -> datetime | None:
        """When the earliest running boost or hand override ends, or a held boost is renewed."""
        ends = [
            until
            for mast in self.masts.values()
            for until in (mast.status.boost_until, mast.status.override_until)
            if until is not None and until > now
        ]
        ends.extend(follow.renew_at for follow in self.follows.values())
        return min(ends) if ends else None

    # -- energy ---------------------------------------------------------------------------

    def tick(self, now: datetime, sun_down: bool) -> None:
        """Bring every mast's energy and reference up to now; take the site's and paths' totals."""
        if self.masts and self.counting_since is None:
            self.counting_since = now
        by_path: dict[str, tuple[float, float]] = {}
        for mast in self.masts.values():
            mast.accumulate(now, mast.is_dark(sun_down))
            energy, reference = by_path.get(mast.spec.path, (0.0, 0.0))
            status = mast.status
            by_path[mast.spec.path] = (energy + status.energy_kwh, reference + status.reference_kwh)
        self.last_tick = now
        self.counted_by_path = by_path
        self.counted = (
            self.energy_kwh(),
            sum(mast.status.reference_kwh for mast in self.masts.values()),
        )

    def paths(self) -> list[str]:
        """The named paths of the site's masts."""
        return sorted({mast.spec.path for mast in self.masts.values()} - {""})

    def savings_percent(self, path: str | None = None) -> float | None:
        """Energy saved against full power while dark, since counting began (last tick).

        For the whole site, or for the masts of one path.
        """
        energy, reference = (
            self.counted if path is None else self.counted_by_path.get(path, (0.0, 0.0))
        )
        if reference <= 0:
            return None
        return round(max(0.0, 100 * (1 - energy / reference)), 1)

    def energy_kwh(self) -> float:
        """Energy of all masts since they were added."""
        return sum(mast.status.energy_kwh for mast in self.masts.values())

    def rated_power_w(self) -> float:
        """All masts burning at full power."""
        return sum(mast.spec.rated_power_w for mast in self.masts.values())


_MAST_TIMES = (
    "boost_until",
    "commanded_at",
    "last_seen",
    "level_since",
    "override_until",
    "luminaire_seen",
    "level_changed_at",
    "unconfirmed_since",
    "reasked_at",
    "offline_since",
)
_MAST_NUMBERS = (
    "brightness",
    "illuminance_lx",
    "power_w",
    "energy_kwh",
    "commanded_level",
    "meter_kwh",
    "override_level",
    "reference_kwh",
)


def mast_status_to_dict(status: MastStatus) -> dict[str, Any]:
    """Serialise a mast's status for storage."""
    data: dict[str, Any] = {key: getattr(status, key) for key in _MAST_NUMBERS}
    data.update(
        {key: value.isoformat() if (value := getattr(status, key)) else None for key in _MAST_TIMES}
    )
    data.update(
        on=status.on,
        motion=status.motion,
        measured_energy=status.measured_energy,
        commanded_kelvin=status.commanded_kelvin,
        dark=status.dark,
        suspected={kind.value: at.isoformat() for kind, at in status.suspected.items()},
        faults={kind.value: at.isoformat() for kind, at in status.faults.items()},
    )
    return data


def _fault_times(value: Any) -> dict[FaultKind, datetime]:
    found: dict[FaultKind, datetime] = {}
    if isinstance(value, Mapping):
        for kind in FaultKind:
            at = stored_time(value.get(kind.value))
            if at is not None:
                found[kind] = at
    return found


def mast_status_from_dict(data: Mapping[str, Any]) -> MastStatus:
    """Rebuild a stored status; unreadable parts fall back to unknown."""
    status = MastStatus()
    for key in _MAST_NUMBERS:
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            setattr(status, key, float(value))
    for key in _MAST_TIMES:
        parsed = stored_time(data.get(key))
        if parsed is not None:
            setattr(status, key, parsed)
    for key in ("on", "motion", "dark"):
        if isinstance(data.get(key), bool):
            setattr(status, key, data[key])
    status.measured_energy = data.get("measured_energy") is True
    kelvin = data.get("commanded_kelvin")
    if isinstance(kelvin, int) and not isinstance(kelvin, bool):
        status.commanded_kelvin = kelvin
    status.suspected = _fault_times(data.get("suspected"))
    status.faults = _fault_times(data.get("faults"))
    return status


def follow_to_dict(follow: Follow) -> dict[str, Any]:
    """Serialise a boost held by motion, so that a restart keeps holding it."""
    return {
        "hops": follow.hops,
        "hold_s": follow.hold_s,
        "renew_at": follow.renew_at.isoformat(),
        "until": follow.until.isoformat(),
    }


def follow_from_dict(data: Any) -> Follow | None:
    """Rebuild a stored held boost; None where it cannot be read."""
    if not isinstance(data, Mapping):
        return None
    renew_at, until = stored_time(data.get("renew_at")), stored_time(data.get("until"))
    hops, hold_s = data.get("hops"), data.get("hold_s")
    if renew_at is None or until is None:
        return None
    if hops is not None and (not isinstance(hops, int) or isinstance(hops, bool) or hops < 0):
        return None
    if hold_s is not None and (
        not isinstance(hold_s, int | float) or isinstance(hold_s, bool) or hold_s <= 0
    ):
        return None
    return Follow(hops, None if hold_s is None else float(hold_s), renew_at, until)
