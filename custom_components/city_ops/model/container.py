"""A waste container: geometry, fill level, fill state, emptying, fill rate and fire alarm."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
import math
from typing import Any

from ..sources.reading import Reading

EMPTYING_DROP = 30.0  # points between consecutive readings that mean "emptied"
FILL_STATE_HYSTERESIS = 3.0  # points a level must fall below a boundary to step down
EMPTY_BELOW = 10.0
ALMOST_FULL_MARGIN = 20.0  # almost full starts this many points below the full threshold
FIRE_TEMPERATURE_C = 70.0
FIRE_RISE_K = 20.0
FIRE_RISE_WINDOW = timedelta(minutes=30)
FIRE_CLEAR_BELOW_C = 60.0
OFFLINE_AFTER_INTERVALS = 3
MAX_HISTORY = 96  # fill readings kept for the fill rate
MIN_RATE_POINTS = 3
MIN_RATE_SPAN = timedelta(minutes=30)
MAX_PREDICTION = timedelta(days=365)
# Lithium thionyl chloride cells of LoRaWAN sensors: flat curve, 3.6 V fresh, ~3.0 V empty.
BATTERY_FULL_V = 3.6
BATTERY_EMPTY_V = 3.0


class WasteKind(StrEnum):
    """What a container collects."""

    PAPER = "paper"
    GLASS = "glass"
    RESIDUAL = "residual"
    ORGANIC = "organic"
    PACKAGING = "packaging"
    OTHER = "other"


class FillState(StrEnum):
    """Coarse fill state, ordered from empty to full."""

    EMPTY = "empty"
    OK = "ok"
    ALMOST_FULL = "almost_full"
    FULL = "full"


_FILL_ORDER = list(FillState)


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """What the city knows about a container before any sensor speaks."""

    name: str
    latitude: float
    longitude: float
    waste_kind: WasteKind = WasteKind.RESIDUAL
    volume_l: int = 1100
    depth_mm: int = 1200
    sensor_offset_mm: int = 100
    report_interval_s: int = 3600

    def fill_from_distance(self, distance_mm: float) -> float:
        """Fill % = 100 x (1 - (distance - offset) / depth), clamped, one decimal."""
        level = 100.0 * (1 - (distance_mm - self.sensor_offset_mm) / self.depth_mm)
        if level <= 0.0:
            return 0.0
        return 100.0 if level >= 100.0 else round(level, 1)


@dataclass(frozen=True, slots=True)
class Emptying:
    """A container was emptied between two readings."""

    at: datetime
    before: float
    after: float


@dataclass(slots=True)
class ContainerStatus:
    """A container's state as the sensors told it; persisted between restarts."""

    fill_level: float | None = None
    fill_state: FillState | None = None
    distance_mm: float | None = None
    battery: float | None = None
    temperature: float | None = None
    tilted: bool | None = None
    fire_alarm: bool = False
    last_seen: datetime | None = None
    last_emptied: datetime | None = None
    full_since: datetime | None = None
    online: bool = True
    # Lists, not deques: an empty deque takes 770 bytes, an empty list 56, and a city has
    # thousands of containers whose temperature history stays empty.
    fill_history: list[tuple[datetime, float]] = field(default_factory=list)  # MAX_HISTORY
    temperature_history: list[tuple[datetime, float]] = field(default_factory=list)


def fill_state_for(level: float, current: FillState | None, full_at: float) -> FillState:
    """Return the fill state; stepping down needs the level to clear the boundary by a margin."""
    almost = full_at - ALMOST_FULL_MARGIN
    target = (level >= EMPTY_BELOW) + (level >= almost) + (level >= full_at)
    if current is None:
        return _FILL_ORDER[target]
    now_index = _FILL_ORDER.index(current)
    if target < now_index:
        lifted = level + FILL_STATE_HYSTERESIS
        target = min(now_index, (lifted >= EMPTY_BELOW) + (lifted >= almost) + (lifted >= full_at))
    return _FILL_ORDER[target]


def battery_from_volt(volt: float) -> float:
    """Map a cell voltage to a percentage on a linear approximation."""
    share = (volt - BATTERY_EMPTY_V) / (BATTERY_FULL_V - BATTERY_EMPTY_V)
    return round(min(100.0, max(0.0, 100.0 * share)))


def fill_rate_per_hour(history: Sequence[tuple[datetime, float]]) -> float | None:
    """Least-squares slope of fill % over time, or None when the readings cannot support one."""
    if len(history) < MIN_RATE_POINTS:
        return None
    first = history[0][0]
    if history[-1][0] - first < MIN_RATE_SPAN:
        return None
    count = len(history)
    xs = [(at - first).total_seconds() / 3600 for at, _ in history]
    mean_x = sum(xs) / count
    mean_y = sum(level for _, level in history) / count
    var_x = sum((x - mean_x) ** 2 for x in xs)
    if var_x == 0:
        return None
    cov = sum((x - mean_x) * (level - mean_y) for x, (_, level) in zip(xs, history, strict=True))
    return cov / var_x


class _Trend:
    """Running least-squares sums over the fill history, so the rate costs O(1) per reading.

    The sums follow the history they were built from; if anything else changed that history,
    `in_sync` notices (count and both ends) and they are rebuilt.
    """

    __slots__ = ("first", "last", "n", "origin", "sx", "sxx", "sxy", "sy")

    def __init__(self) -> None:
        self.reset(None)

    def reset(self, origin: datetime | None) -> None:
        self.origin = origin
        self.n = 0
        self.sx = self.sy = self.sxx = self.sxy = 0.0
        self.first: tuple[datetime, float] | None = None
        self.last: tuple[datetime, float] | None = None

    def _hours(self, at: datetime) -> float:
        assert self.origin is not None
        return (at - self.origin).total_seconds() / 3600

    def add(self, point: tuple[datetime, float]) -> None:
        if self.origin is None:
            self.origin = point[0]
        x, y = self._hours(point[0]), point[1]
        self.n += 1
        self.sx += x
        self.sy += y
        self.sxx += x * x
        self.sxy += x * y
        self.last = point
        if self.first is None:
            self.first = point

    def remove(self, point: tuple[datetime, float], new_first: tuple[datetime, float]) -> None:
        x, y = self._hours(point[0]), point[1]
        self.n -= 1
        self.sx -= x
        self.sy -= y
        self.sxx -= x * x
        self.sxy -= x * y
        self.first = new_first

    def shift(
        self,
        evicted: tuple[datetime, float],
        point: tuple[datetime, float],
        new_first: tuple[datetime, float],
    ) -> None:
        """`remove(evicted, new_first)` then `add(point)` (same sums, one call per reading)."""
        origin = self.origin
        assert origin is not None
        x_out, y_out = (evicted[0] - origin).total_seconds() / 3600, evicted[1]
        x_in, y_in = (point[0] - origin).total_seconds() / 3600, point[1]
        self.sx = self.sx - x_out + x_in
        self.sy = self.sy - y_out + y_in
        self.sxx = self.sxx - x_out * x_out + x_in * x_in
        self.sxy = self.sxy - x_out * y_out + x_in * y_in
        self.first = new_first
        self.last = point

    def rebuild(self, history: Sequence[tuple[datetime, float]]) -> None:
        self.reset(history[0][0] if history else None)
        for point in history:
            self.add(point)

    def in_sync(self, history: Sequence[tuple[datetime, float]]) -> bool:
        if self.n != len(history):
            return False
        return not history or (self.first == history[0] and self.last == history[-1])

    def slope(self) -> float | None:
        if self.n < MIN_RATE_POINTS or self.first is None or self.last is None:
            return None
        if self.last[0] - self.first[0] < MIN_RATE_SPAN:
            return None
        var_x = self.sxx - self.sx * self.sx / self.n
        if var_x <= 1e-12:
            return None
        return (self.sxy - self.sx * self.sy / self.n) / var_x


@dataclass(slots=True)
class ContainerUpdate:
    """What one reading changed, for the presentation layer."""

    emptied: Emptying | None = None
    fire_started: bool = False
    fire_ended: bool = False
    back_online: bool = False


class Container:
    """One container's behaviour: applies readings, decides states."""

    def __init__(self, spec: ContainerSpec, status: ContainerStatus | None = None) -> None:
        """Start from a spec and, after a restart, the persisted status."""
        self.spec = spec
        self.status = status or ContainerStatus()
        self._trend = _Trend()
        self._trend.rebuild(self.status.fill_history)
        # The last prediction and what it was made from: the due check and the entity both
        # ask after every reading.
        self._predicted: tuple[ContainerStatus, float, datetime | None] | None = None

    def apply(self, reading: Reading, now: datetime, full_at: float) -> ContainerUpdate:
        """Fold one reading into the status and report what changed."""
        status = self.status
        update = ContainerUpdate()
        self._predicted = None
        if not status.online:
            status.online = True
            update.back_online = True
        status.last_seen = now

        level: float | None = None
        if (distance := reading.distance_mm) is not None:
            status.distance_mm = distance
            level = self.spec.fill_from_distance(distance)
        elif reading.fill_percent is not None:
            level = round(min(100.0, max(0.0, reading.fill_percent)), 1)
        if level is not None:
            previous = status.fill_level
            if previous is not None and previous - level >= EMPTYING_DROP:
                update.emptied = Emptying(at=now, before=previous, after=level)
                status.last_emptied = now
                status.fill_history.clear()
                status.full_since = None
            status.fill_level = level
            status.fill_state = fill_state_for(level, status.fill_state, full_at)
            if level < full_at:
                status.full_since = None
            elif status.full_since is None:
                status.full_since = now
            self._record(now, level)

        if reading.battery_percent is not None:
            status.battery = round(reading.battery_percent)
        elif reading.battery_volt is not None:
            status.battery = battery_from_volt(reading.battery_volt)
        if reading.tilted is not None:
            status.tilted = reading.tilted
        if reading.temperature_c is not None:
            self._apply_temperature(reading.temperature_c, now, update)
        return update

    def emptied_by_hand(self, now: datetime) -> None:
        """The crew emptied it: a new fill cycle starts; the level is the sensor's next word."""
        status = self.status
        status.last_emptied = now
        status.fill_history.clear()
        self._trend.rebuild(status.fill_history)
        status.full_since = None
        self._predicted = None

    def _apply_temperature(self, celsius: float, now: datetime, update: ContainerUpdate) -> None:
        """Raise the fire alarm on heat or on a fast rise; clear it only once well below."""
        status = self.status
        status.temperature = celsius
        history = status.temperature_history
        while history and now - history[0][0] > FIRE_RISE_WINDOW:
            del history[0]
        history.append((now, celsius))
        coldest = min(value for _, value in history)
        alarm = celsius >= FIRE_TEMPERATURE_C or celsius - coldest >= FIRE_RISE_K
        if alarm and not status.fire_alarm:
            status.fire_alarm = True
            update.fire_started = True
        elif not alarm and status.fire_alarm and celsius < FIRE_CLEAR_BELOW_C:
            status.fire_alarm = False
            update.fire_ended = True

    def _record(self, now: datetime, level: float) -> None:
        history, trend = self.status.fill_history, self._trend
        point = (now, level)
        if not trend.in_sync(history) or len(history) > MAX_HISTORY:
            history.append(point)
            del history[:-MAX_HISTORY]
            trend.rebuild(history)
            return
        if not history:
            trend.reset(now)
        elif len(history) == MAX_HISTORY:
            evicted = history.pop(0)
            history.append(point)
            trend.shift(evicted, point, history[0])
            return
        history.append(point)
        trend.add(point)

    def fill_rate(self) -> float | None:
        """Percentage points per hour since the last emptying (least squares)."""
        if not self._trend.in_sync(self.status.fill_history):
            self._trend.rebuild(self.status.fill_history)
        return self._trend.slope()

    def predicted_full(self, full_at: float) -> datetime | None:
        """When the fitted trend reaches the full threshold; None when it cannot be estimated."""
        memo = self._predicted
        if memo is not None and memo[0] is self.status and memo[1] == full_at:
            return memo[2]
        predicted = self._predict(full_at)
        self._predicted = (self.status, full_at, predicted)
        return predicted

    def _predict(self, full_at: float) -> datetime | None:
        status = self.status
        if status.fill_level is None or status.last_seen is None:
            return None
        if status.fill_level >= full_at:
            # Stable while it stays full, so the entity does not change with every reading.
            return status.full_since or status.last_seen
        rate = self.fill_rate()
        if rate is None or rate <= 0.01:
            return None
        hours = (full_at - status.fill_level) / rate
        if hours * 3600 > MAX_PREDICTION.total_seconds():
            return None
        return status.last_seen + timedelta(hours=hours)

    def check_online(self, now: datetime) -> bool | None:
        """Mark the container offline after missed reports; return the new state when it flips."""
        status = self.status
        if status.last_seen is None or not status.online:
            return None
        silence = timedelta(seconds=self.spec.report_interval_s * OFFLINE_AFTER_INTERVALS)
        if now - status.last_seen > silence:
            status.online = False
            return False
        return None

    def is_due(self, now: datetime, full_at: float, horizon: timedelta) -> bool:
        """A container is due when full, or predicted full within the horizon."""
        if self.status.fill_level is None:
            return False
        if self.status.fill_level >= full_at:
            return True
        predicted = self.predicted_full(full_at)
        return predicted is not None and predicted <= now + horizon

    def to_dict(self) -> dict[str, Any]:
        """Serialise the status for storage."""
        status = self.status
        return {
            "fill_level": status.fill_level,
            "fill_state": status.fill_state,
            "distance_mm": status.distance_mm,
            "battery": status.battery,
            "temperature": status.temperature,
            "tilted": status.tilted,
            "fire_alarm": status.fire_alarm,
            "last_seen": status.last_seen.isoformat() if status.last_seen else None,
            "last_emptied": status.last_emptied.isoformat() if status.last_emptied else None,
            "online": status.online,
            "full_since": status.full_since.isoformat() if status.full_since else None,
            # Epoch seconds: thousands of points are written on every save. The lists are
            # copied first (one C call): the site's store may serialise in a worker thread
            # while the event loop appends.
            "fill_history": [(at.timestamp(), level) for at, level in tuple(status.fill_history)],
            "temperature_history": [
                (at.timestamp(), value) for at, value in tuple(status.temperature_history)
            ],
        }

    @staticmethod
    def status_from_dict(data: dict[str, Any]) -> ContainerStatus:
        """Rebuild a persisted status; any unreadable part falls back to unknown."""
        state = data.get("fill_state")
        battery = _number(data.get("battery"))
        tilted = data.get("tilted")
        status = ContainerStatus(
            fill_level=_number(data.get("fill_level")),
            fill_state=FillState(state)
            if isinstance(state, str) and state in _FILL_VALUES
            else None,
            distance_mm=_number(data.get("distance_mm")),
            battery=None if battery is None else round(battery),
            temperature=_number(data.get("temperature")),
            tilted=tilted if isinstance(tilted, bool) else None,
            fire_alarm=data.get("fire_alarm") is True,
            last_seen=stored_time(data.get("last_seen")),
            last_emptied=stored_time(data.get("last_emptied")),
            full_since=stored_time(data.get("full_since")),
            online=data.get("online") is not False,
        )
        status.fill_history.extend(_series(data.get("fill_history"))[-MAX_HISTORY:])
        status.temperature_history.extend(_series(data.get("temperature_history")))
        return status


_FILL_VALUES = frozenset(state.value for state in FillState)


def stored_time(value: Any) -> datetime | None:
    """Parse a stored timestamp; naive ones are taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _epoch(value: Any) -> datetime | None:
    seconds = _number(value)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except OverflowError, OSError, ValueError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _series(value: Any) -> list[tuple[datetime, float]]:
    """Stored (timestamp, value) pairs; malformed pairs are skipped."""
    if not isinstance(value, list):
        return []
    series = []
    for item in value:
        if not isinstance(item, list | tuple) or len(item) != 2:
            continue
        at, number = stored_time(item[0]) or _epoch(item[0]), _number(item[1])
        if at is not None and number is not None:
            series.append((at, number))
    return series
