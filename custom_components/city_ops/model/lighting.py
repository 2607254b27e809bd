"""Park lighting: profiles, the mast neighbour graph, boosts along a corridor, energy."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from ..sources.reading import Reading

FAULT_POWER_SHARE = 0.05  # below 5 % of the expected power while commanded on: lamp fault
FAULT_GRACE = timedelta(minutes=2)  # a lamp warms up and meters report late


@dataclass(frozen=True, slots=True)
class LightingProfile:
    """How a site's masts light the paths; every value can be overridden per mast."""

    base_level: float = 30.0  # % while dark and nobody is there
    boost_level: float = 100.0  # % while someone is there
    hold_s: int = 120  # how long a boost lasts after the last motion
    corridor_hops: int = 1  # neighbours lit ahead of and behind a walker
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


class MastGraph:
    """Which masts neighbour which; always symmetric, whatever one side declared."""

    def __init__(self, specs: Iterable[MastSpec]) -> None:
        """Build the undirected graph; neighbours that are not masts of the site are ignored."""
        self._edges: dict[str, set[str]] = {}
        specs = list(specs)
        names = {spec.name for spec in specs}
        for spec in specs:
            self._edges.setdefault(spec.name, set())
            for other in spec.neighbours:
                if other in names and other != spec.name:
                    self._edges[spec.name].add(other)
                    self._edges.setdefault(other, set()).add(spec.name)

    def neighbours(self, name: str) -> set[str]:
        """Direct neighbours of a mast."""
        return set(self._edges.get(name, ()))

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

    def accumulate(self, now: datetime) -> None:
        """Integrate the estimated energy up to now (no-op when a meter reports energy)."""
        status = self.status
        if (
            status.level_since is not None
            and not status.measured_energy
            and now > status.level_since
        ):
            watts, _ = self.power_w()
            status.energy_kwh += watts * (now - status.level_since).total_seconds() / 3_600_000
        status.level_since = now

    def lamp_fault(self, now: datetime, sun_down: bool) -> bool:
        """Silent after a command, drawing almost nothing while on, or burning in daylight."""
        status = self.status
        commanded_at = status.commanded_at
        settled = commanded_at is not None and now - commanded_at > FAULT_GRACE
        if (
            commanded_at is not None
            and settled
            and (status.luminaire_seen is None or status.luminaire_seen < commanded_at)
        ):
            return True  # a luminaire confirms every command with a report
        if (
            settled
            and status.power_w is not None
            and (status.commanded_level or 0) > 0
            and status.power_w
            < FAULT_POWER_SHARE * self.spec.rated_power_w * (status.commanded_level or 0) / 100
        ):
            return True
        return bool(
            settled
            and not self.is_dark(sun_down)
            and not self.boosted(now)
            and self.level() > 0
            and (status.commanded_level or 0) == 0
        )


class Lighting:
    """All masts of a site: boosts, reconciliation to the profile, commands to send."""

    def __init__(self, masts: Mapping[str, Mast]) -> None:
        """Masts by name; the graph follows their declared neighbours."""
        self.masts = dict(masts)
        self.graph = MastGraph(mast.spec for mast in self.masts.values())
        self.reference_kwh = 0.0
        self.last_tick: datetime | None = None

    def boost(
        self,
        names: Iterable[str],
        now: datetime,
        hops: int | None = None,
        hold_s: float | None = None,
    ) -> list[str]:
        """Hold the masts and their corridor at boost; a boost never shortens an earlier one."""
        touched: dict[str, None] = {}
        for name in names:
            mast = self.masts.get(name)
            if mast is None:
                continue
            radius = mast.spec.profile.corridor_hops if hops is None else hops
            for other in self.graph.corridor(name, radius):
                target = self.masts[other]
                hold = target.spec.profile.hold_s if hold_s is None else hold_s
                until = now + timedelta(seconds=hold)
                current = target.status.boost_until
                if current is None or until > current:
                    target.status.boost_until = until
                touched[other] = None
        return list(touched)

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
            profile = mast.spec.profile
            rising = status.commanded_level is None or level > status.commanded_level
            transition = profile.transition_up_s if rising else profile.transition_down_s
            mast.accumulate(now)
            status.commanded_level = level
            status.commanded_kelvin = kelvin
            status.commanded_at = now
            commands.append(Command(name, level, transition, kelvin))
        return commands

    def next_expiry(self, now: datetime) -> datetime | None:
        """When the earliest running boost or hand override ends."""
        ends = [
            until
            for mast in self.masts.values()
            for until in (mast.status.boost_until, mast.status.override_until)
            if until is not None and until > now
        ]
        return min(ends) if ends else None

    def tick(self, now: datetime, sun_down: bool) -> None:
        """Integrate energy and the full-power reference (all masts at rated power while dark)."""
        if self.last_tick is not None and now > self.last_tick:
            # Per mast: a mast dark by its own light sensor would burn at full power too.
            hours = (now - self.last_tick).total_seconds() / 3600
            dark_watts = sum(
                mast.spec.rated_power_w for mast in self.masts.values() if mast.is_dark(sun_down)
            )
            self.reference_kwh += dark_watts * hours / 1000
        self.last_tick = now
        for mast in self.masts.values():
            mast.accumulate(now)

    def savings_percent(self) -> float | None:
        """Energy saved against burning at full power from dusk to dawn."""
        if self.reference_kwh <= 0:
            return None
        return round(max(0.0, 100 * (1 - self.energy_kwh() / self.reference_kwh)), 1)

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
)
_MAST_NUMBERS = (
    "brightness",
    "illuminance_lx",
    "power_w",
    "energy_kwh",
    "commanded_level",
    "meter_kwh",
    "override_level",
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
    )
    return data


def mast_status_from_dict(data: Mapping[str, Any]) -> MastStatus:
    """Rebuild a stored status; unreadable parts fall back to unknown."""
    status = MastStatus()
    for key in _MAST_NUMBERS:
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            setattr(status, key, float(value))
    for key in _MAST_TIMES:
        value = data.get(key)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                continue
            setattr(status, key, parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    for key in ("on", "motion"):
        if isinstance(data.get(key), bool):
            setattr(status, key, data[key])
    status.measured_energy = data.get("measured_energy") is True
    kelvin = data.get("commanded_kelvin")
    if isinstance(kelvin, int) and not isinstance(kelvin, bool):
        status.commanded_kelvin = kelvin
    return status
