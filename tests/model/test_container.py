"""Container model: fill formula, fill state, emptying, fill rate, prediction, fire, offline."""

from __future__ import annotations

from collections import deque
import dataclasses
from datetime import UTC, datetime, timedelta
import json
import random
from typing import Any

import pytest

from custom_components.city_ops.model.container import (
    MAX_HISTORY,
    Container,
    ContainerSpec,
    ContainerStatus,
    Emptying,
    FillState,
    battery_from_volt,
    fill_rate_per_hour,
    fill_state_for,
)
from custom_components.city_ops.sources.reading import Reading

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
FULL_AT = 80.0
SPEC = ContainerSpec(name="Bin 0042", latitude=53.7, longitude=10.0)  # depth 1200, offset 100


def fill(percent: float) -> Reading:
    return Reading(device="bin", fill_percent=percent)


def heat(celsius: float) -> Reading:
    return Reading(device="bin", temperature_c=celsius)


def container(**status: Any) -> Container:
    return Container(SPEC, ContainerStatus(**status))


# -- geometry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("distance", "level"),
    [
        pytest.param(700, 50.0, id="half"),
        pytest.param(1250, 4.2, id="nearly-empty-rounded"),
        pytest.param(1300, 0.0, id="bottom"),
        pytest.param(100, 100.0, id="at-offset"),
        pytest.param(0, 100.0, id="clamp-above"),
        pytest.param(5000, 0.0, id="clamp-below"),
        pytest.param(400, 75.0, id="three-quarters"),
        pytest.param(700.4, 50.0, id="one-decimal"),
    ],
)
def test_fill_from_distance(distance: float, level: float) -> None:
    assert SPEC.depth_mm == 1200
    assert SPEC.sensor_offset_mm == 100
    assert SPEC.fill_from_distance(distance) == level


def test_fill_from_distance_other_geometry() -> None:
    spec = ContainerSpec(name="Glass", latitude=0, longitude=0, depth_mm=2000, sensor_offset_mm=0)
    assert spec.fill_from_distance(500) == 75.0


@pytest.mark.parametrize(
    ("reading", "level"),
    [
        pytest.param(Reading(device="bin", distance_mm=700), 50.0, id="distance"),
        pytest.param(Reading(device="bin", fill_percent=37.25), 37.2, id="percent-rounded"),
        pytest.param(
            Reading(device="bin", distance_mm=700, fill_percent=10), 50.0, id="distance-wins"
        ),
    ],
)
def test_apply_sets_fill_level(reading: Reading, level: float) -> None:
    bin_ = container()
    bin_.apply(reading, T0, FULL_AT)
    assert bin_.status.fill_level == level
    assert bin_.status.last_seen == T0
    assert list(bin_.status.fill_history) == [(T0, level)]


def test_reading_without_level_keeps_level() -> None:
    bin_ = container()
    bin_.apply(fill(40), T0, FULL_AT)
    bin_.apply(
        Reading(device="bin", battery_percent=55.4, tilted=True), T0 + timedelta(hours=1), FULL_AT
    )
    assert bin_.status.fill_level == 40.0
    assert bin_.status.battery == 55
    assert bin_.status.tilted is True
    assert len(bin_.status.fill_history) == 1


# -- fill state ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "state"),
    [
        pytest.param(0, FillState.EMPTY, id="0"),
        pytest.param(9.9, FillState.EMPTY, id="9.9"),
        pytest.param(10, FillState.OK, id="10"),
        pytest.param(59.9, FillState.OK, id="59.9"),
        pytest.param(60, FillState.ALMOST_FULL, id="60"),
        pytest.param(79.9, FillState.ALMOST_FULL, id="79.9"),
        pytest.param(80, FillState.FULL, id="80"),
        pytest.param(100, FillState.FULL, id="100"),
    ],
)
def test_fill_state_from_nothing(level: float, state: FillState) -> None:
    assert fill_state_for(level, None, FULL_AT) == state


def test_fill_state_follows_threshold() -> None:
    assert fill_state_for(70, None, 70) == FillState.FULL
    assert fill_state_for(50, None, 70) == FillState.ALMOST_FULL


def test_no_flapping_around_full() -> None:
    bin_ = container()
    states = []
    for step, level in enumerate([79, 81, 79, 81, 79.5, 80.5, 79, 81, 78, 77.5]):
        bin_.apply(fill(level), T0 + timedelta(minutes=10 * step), FULL_AT)
        states.append(bin_.status.fill_state)
    assert states[0] == FillState.ALMOST_FULL
    assert states[1:] == [FillState.FULL] * 9


@pytest.mark.parametrize(
    ("current", "level", "state"),
    [
        pytest.param(FillState.FULL, 77.0, FillState.FULL, id="full-at-boundary-minus-3"),
        pytest.param(FillState.FULL, 76.9, FillState.ALMOST_FULL, id="full-below-boundary-minus-3"),
        pytest.param(FillState.ALMOST_FULL, 57.0, FillState.ALMOST_FULL, id="almost-full-at-57"),
        pytest.param(FillState.ALMOST_FULL, 56.9, FillState.OK, id="almost-full-below-57"),
        pytest.param(FillState.OK, 7.0, FillState.OK, id="ok-at-7"),
        pytest.param(FillState.OK, 6.9, FillState.EMPTY, id="ok-below-7"),
        pytest.param(FillState.FULL, 58.0, FillState.ALMOST_FULL, id="full-to-almost-full-only"),
        pytest.param(FillState.FULL, 2.0, FillState.EMPTY, id="emptied-straight-to-empty"),
        pytest.param(FillState.EMPTY, 80.0, FillState.FULL, id="steps-up-at-once"),
        pytest.param(FillState.OK, 60.0, FillState.ALMOST_FULL, id="steps-up-without-margin"),
    ],
)
def test_fill_state_hysteresis(current: FillState, level: float, state: FillState) -> None:
    assert fill_state_for(level, current, FULL_AT) == state


# -- emptying --------------------------------------------------------------------------------


def test_emptying_detected_on_drop_of_30() -> None:
    bin_ = container()
    for hour, level in enumerate([40, 55, 70, 80]):
        bin_.apply(fill(level), T0 + timedelta(hours=hour), FULL_AT)
    assert len(bin_.status.fill_history) == 4
    at = T0 + timedelta(hours=5)
    update = bin_.apply(fill(50), at, FULL_AT)
    assert update.emptied == Emptying(at=at, before=80.0, after=50.0)
    assert bin_.status.last_emptied == at
    assert list(bin_.status.fill_history) == [(at, 50.0)]
    assert bin_.status.fill_state == FillState.OK


def test_no_emptying_for_drop_of_29_9() -> None:
    bin_ = container()
    bin_.apply(fill(80), T0, FULL_AT)
    update = bin_.apply(fill(50.1), T0 + timedelta(hours=1), FULL_AT)
    assert update.emptied is None
    assert bin_.status.last_emptied is None
    assert len(bin_.status.fill_history) == 2


def test_emptying_compares_consecutive_readings_only() -> None:
    """A slow decline (compaction, evaporation) is not an emptying."""
    bin_ = container()
    for hour, level in enumerate([90, 75, 60, 45, 30]):
        update = bin_.apply(fill(level), T0 + timedelta(hours=hour), FULL_AT)
        assert update.emptied is None


def test_emptying_from_distance() -> None:
    bin_ = container()
    bin_.apply(Reading(device="bin", distance_mm=220), T0, FULL_AT)  # 90 %
    update = bin_.apply(Reading(device="bin", distance_mm=1250), T0 + timedelta(hours=1), FULL_AT)
    assert update.emptied == Emptying(at=T0 + timedelta(hours=1), before=90.0, after=4.2)
    assert bin_.status.fill_state == FillState.EMPTY


def test_first_reading_is_not_an_emptying() -> None:
    update = container().apply(fill(0), T0, FULL_AT)
    assert update.emptied is None


# -- fill rate -------------------------------------------------------------------------------


def _series(
    rate: float, start: float, count: int, step: timedelta, noise: float = 0.0, seed: int = 1
):
    rnd = random.Random(seed)
    return deque(
        (
            T0 + step * i,
            start + rate * (step * i).total_seconds() / 3600 + rnd.uniform(-noise, noise),
        )
        for i in range(count)
    )


@pytest.mark.parametrize(
    ("rate", "noise", "tolerance"),
    [
        pytest.param(2.0, 0.0, 1e-9, id="exact"),
        pytest.param(2.0, 1.5, 0.15, id="noisy"),
        pytest.param(0.5, 0.5, 0.05, id="slow-noisy"),
        pytest.param(-1.0, 0.5, 0.05, id="falling"),
        pytest.param(0.0, 0.5, 0.05, id="flat"),
    ],
)
def test_fill_rate_least_squares(rate: float, noise: float, tolerance: float) -> None:
    history = _series(rate, 10, 48, timedelta(hours=1), noise)
    assert fill_rate_per_hour(history) == pytest.approx(rate, abs=tolerance)


def test_fill_rate_uneven_spacing() -> None:
    times = [0, 0.25, 3, 3.1, 7, 12.5, 20]
    history = deque((T0 + timedelta(hours=h), 5 + 3 * h) for h in times)
    assert fill_rate_per_hour(history) == pytest.approx(3.0)


@pytest.mark.parametrize(
    "history",
    [
        pytest.param(deque(), id="none"),
        pytest.param(deque([(T0, 10.0)]), id="one"),
        pytest.param(deque([(T0, 10.0), (T0 + timedelta(hours=5), 60.0)]), id="two"),
        pytest.param(_series(5, 10, 10, timedelta(minutes=3)), id="span-27-min"),
        pytest.param(
            deque(
                [
                    (T0, 10.0),
                    (T0 + timedelta(minutes=29), 12.0),
                    (T0 + timedelta(minutes=29, seconds=59), 13.0),
                ]
            ),
            id="span-just-under-30-min",
        ),
    ],
)
def test_fill_rate_needs_three_points_over_30_min(history: deque[tuple[datetime, float]]) -> None:
    assert fill_rate_per_hour(history) is None


def test_fill_rate_at_30_min_span() -> None:
    history = deque(
        [(T0, 10.0), (T0 + timedelta(minutes=15), 11.0), (T0 + timedelta(minutes=30), 12.0)]
    )
    assert fill_rate_per_hour(history) == pytest.approx(4.0)


def test_fill_rate_since_last_emptying_only() -> None:
    bin_ = container()
    for hour in range(6):
        bin_.apply(fill(20 + 12 * hour), T0 + timedelta(hours=hour), FULL_AT)  # 12 %/h up to 80
    assert bin_.fill_rate() == pytest.approx(12.0)
    for hour in range(6, 10):
        bin_.apply(fill(2 + (hour - 6)), T0 + timedelta(hours=hour), FULL_AT)  # emptied, then 1 %/h
    assert bin_.fill_rate() == pytest.approx(1.0)


def test_fill_history_is_bounded() -> None:
    bin_ = container()
    for step in range(MAX_HISTORY + 50):
        bin_.apply(fill(min(99, step * 0.5)), T0 + timedelta(minutes=step), FULL_AT)
    assert len(bin_.status.fill_history) == MAX_HISTORY


# -- prediction ------------------------------------------------------------------------------


def test_predicted_full_on_linear_trend() -> None:
    bin_ = container()
    for hour in range(5):
        bin_.apply(fill(20 + 10 * hour), T0 + timedelta(hours=hour), FULL_AT)  # 60 % at T0+4h
    predicted = bin_.predicted_full(FULL_AT)
    assert predicted is not None
    assert abs(predicted - (T0 + timedelta(hours=6))) < timedelta(seconds=1)


def test_predicted_full_uses_threshold() -> None:
    bin_ = container()
    for hour in range(5):
        bin_.apply(fill(20 + 10 * hour), T0 + timedelta(hours=hour), FULL_AT)
    predicted = bin_.predicted_full(90.0)
    assert predicted is not None
    assert abs(predicted - (T0 + timedelta(hours=7))) < timedelta(seconds=1)


@pytest.mark.parametrize(
    ("levels", "step"),
    [
        pytest.param([50, 50, 50, 50], timedelta(hours=1), id="flat"),
        pytest.param([60, 58, 56, 54], timedelta(hours=1), id="falling"),
        # 0.1 points a day is 0.004 points an hour: noise, not a trend (full would be 300 days off)
        pytest.param([50, 50.1, 50.2, 50.3], timedelta(days=1), id="crawling"),
    ],
)
def test_no_prediction_without_rise(levels: list[float], step: timedelta) -> None:
    bin_ = container()
    for index, level in enumerate(levels):
        bin_.apply(fill(level), T0 + step * index, FULL_AT)
    assert bin_.fill_rate() is not None
    assert bin_.predicted_full(FULL_AT) is None


def test_no_prediction_without_enough_history() -> None:
    bin_ = container()
    bin_.apply(fill(20), T0, FULL_AT)
    bin_.apply(fill(40), T0 + timedelta(hours=1), FULL_AT)
    assert bin_.predicted_full(FULL_AT) is None
    assert container().predicted_full(FULL_AT) is None


def test_already_full_predicts_when_it_became_full() -> None:
    """Stable while full: the entity must not change with every reading of a full bin."""
    bin_ = container()
    bin_.apply(fill(70), T0 - timedelta(hours=1), FULL_AT)
    bin_.apply(fill(85), T0, FULL_AT)
    assert bin_.predicted_full(FULL_AT) == T0
    bin_.apply(fill(88), T0 + timedelta(hours=2), FULL_AT)
    bin_.apply(Reading(device="bin", battery_percent=80), T0 + timedelta(hours=3), FULL_AT)
    assert bin_.predicted_full(FULL_AT) == T0
    # Falling below the threshold (without an emptying) ends the full period.
    bin_.apply(fill(75), T0 + timedelta(hours=4), FULL_AT)
    bin_.apply(fill(81), T0 + timedelta(hours=5), FULL_AT)
    assert bin_.predicted_full(FULL_AT) == T0 + timedelta(hours=5)


def test_running_trend_matches_the_reference_fit() -> None:
    """The O(1) running sums equal a full least-squares fit, also after eviction."""
    bin_ = container()
    noise = [0.3, -0.2, 0.5, -0.4, 0.1, 0.0, -0.3]
    for step in range(300):  # more than the history keeps: the oldest points are evicted
        level = min(99.0, 0.25 * step + noise[step % len(noise)])
        bin_.apply(fill(level), T0 + timedelta(minutes=20 * step), 100.0)
        reference = fill_rate_per_hour(bin_.status.fill_history)
        rate = bin_.fill_rate()
        if reference is None:
            assert rate is None
        else:
            assert rate == pytest.approx(reference, rel=1e-9, abs=1e-9)
    # Someone replacing the history behind the container's back is noticed.
    bin_.status.fill_history.clear()
    assert bin_.fill_rate() is None


def test_prediction_beyond_a_year_is_none() -> None:
    bin_ = container()
    for step in range(3):
        bin_.apply(fill(2.5 * step), T0 + timedelta(days=10 * step), 100.0)  # 0.0104 %/h
    assert bin_.fill_rate() == pytest.approx(2.5 / 240)
    assert bin_.predicted_full(100.0) is None  # 95 points to go: 380 days
    assert bin_.predicted_full(90.0) is not None  # 85 points: 340 days


@pytest.mark.parametrize(
    ("levels", "due"),
    [
        pytest.param([85], True, id="full"),
        pytest.param([20, 30, 40, 50], True, id="full-within-horizon"),
        pytest.param([20, 21, 22, 23], False, id="full-after-horizon"),
        pytest.param([], False, id="never-reported"),
    ],
)
def test_is_due(levels: list[float], due: bool) -> None:
    bin_ = container()
    for hour, level in enumerate(levels):
        bin_.apply(fill(level), T0 + timedelta(hours=hour), FULL_AT)
    now = T0 + timedelta(hours=len(levels))
    assert bin_.is_due(now, FULL_AT, timedelta(hours=24)) is due


# -- fire alarm ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("series", "alarm"),
    [
        pytest.param([(0, 20), (60, 69.9)], False, id="69.9-after-an-hour"),
        pytest.param([(0, 20), (60, 70)], True, id="70-after-an-hour"),
        pytest.param([(0, 85)], True, id="hot-first-reading"),
        pytest.param([(0, 20), (30, 40)], True, id="rise-20-in-30-min"),
        pytest.param([(0, 20), (10, 25), (20, 30), (30, 40)], True, id="rise-20-in-steps"),
        pytest.param([(0, 20), (30, 39.9)], False, id="rise-19.9-in-30-min"),
        pytest.param([(0, 20), (40, 40)], False, id="rise-20-in-40-min"),
        pytest.param([(0, 20), (20, 30), (40, 40)], False, id="rise-20-in-40-min-steps"),
        pytest.param([(0, -10), (15, 10)], True, id="rise-from-frost"),
        pytest.param([(0, 40), (10, 20)], False, id="falling"),
    ],
)
def test_fire_alarm_raised(series: list[tuple[int, float]], alarm: bool) -> None:
    bin_ = container()
    updates = [bin_.apply(heat(c), T0 + timedelta(minutes=m), FULL_AT) for m, c in series]
    assert bin_.status.fire_alarm is alarm
    assert bin_.status.temperature == series[-1][1]
    assert [u.fire_started for u in updates].count(True) == (1 if alarm else 0)


def test_fire_alarm_clears_only_below_60() -> None:
    bin_ = container()
    assert bin_.apply(heat(75), T0, FULL_AT).fire_started
    steps = [(65, True), (60, True), (61, True), (59.9, False)]
    for hour, (celsius, alarm) in enumerate(steps, start=1):
        update = bin_.apply(heat(celsius), T0 + timedelta(hours=hour), FULL_AT)
        assert bin_.status.fire_alarm is alarm, celsius
        assert update.fire_ended is not alarm
        assert not update.fire_started


def test_fire_alarm_from_rise_clears_when_cool() -> None:
    bin_ = container()
    bin_.apply(heat(15), T0, FULL_AT)
    assert bin_.apply(heat(36), T0 + timedelta(minutes=20), FULL_AT).fire_started
    # Still 21 K above the coldest reading of the window: the alarm stays.
    assert not bin_.apply(heat(36), T0 + timedelta(minutes=25), FULL_AT).fire_ended
    update = bin_.apply(heat(30), T0 + timedelta(hours=2), FULL_AT)
    assert update.fire_ended
    assert not bin_.status.fire_alarm


def test_fire_started_reported_once() -> None:
    bin_ = container()
    updates = [bin_.apply(heat(80 + i), T0 + timedelta(minutes=i), FULL_AT) for i in range(5)]
    assert [u.fire_started for u in updates] == [True, False, False, False, False]


# -- battery ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("volt", "percent"),
    [
        pytest.param(3.6, 100, id="fresh"),
        pytest.param(3.0, 0, id="empty"),
        pytest.param(3.3, 50, id="half"),
        pytest.param(3.45, 75, id="three-quarters"),
        pytest.param(3.65, 100, id="above-full"),
        pytest.param(2.4, 0, id="below-empty"),
        pytest.param(0.0, 0, id="zero"),
    ],
)
def test_battery_from_volt(volt: float, percent: int) -> None:
    assert battery_from_volt(volt) == percent


@pytest.mark.parametrize(
    ("reading", "battery"),
    [
        pytest.param(Reading(device="bin", battery_volt=3.3), 50, id="volt"),
        pytest.param(Reading(device="bin", battery_percent=87.6), 88, id="percent"),
        pytest.param(
            Reading(device="bin", battery_percent=40, battery_volt=3.6), 40, id="percent-wins"
        ),
    ],
)
def test_apply_battery(reading: Reading, battery: int) -> None:
    bin_ = container()
    bin_.apply(reading, T0, FULL_AT)
    assert bin_.status.battery == battery


# -- online ----------------------------------------------------------------------------------


def test_offline_after_three_intervals_and_back_online() -> None:
    bin_ = container()
    assert bin_.check_online(T0) is None  # never reported: nothing to judge
    bin_.apply(fill(30), T0, FULL_AT)
    assert bin_.check_online(T0 + timedelta(hours=3)) is None
    assert bin_.status.online
    assert bin_.check_online(T0 + timedelta(hours=3, seconds=1)) is False
    assert not bin_.status.online
    assert bin_.check_online(T0 + timedelta(hours=9)) is None  # flips once
    update = bin_.apply(
        Reading(device="bin", battery_percent=50), T0 + timedelta(hours=10), FULL_AT
    )
    assert update.back_online
    assert bin_.status.online
    assert not bin_.apply(fill(31), T0 + timedelta(hours=11), FULL_AT).back_online


def test_offline_uses_report_interval() -> None:
    spec = ContainerSpec(name="Fast", latitude=0, longitude=0, report_interval_s=600)
    bin_ = Container(spec)
    bin_.apply(fill(30), T0, FULL_AT)
    assert bin_.check_online(T0 + timedelta(minutes=30)) is None
    assert bin_.check_online(T0 + timedelta(minutes=31)) is False


# -- persistence -----------------------------------------------------------------------------


def _lived_in() -> Container:
    bin_ = container()
    for hour, level in enumerate([30, 45, 60, 85, 5, 12, 20]):
        bin_.apply(fill(level), T0 + timedelta(hours=hour), FULL_AT)
    bin_.apply(
        Reading(device="bin", battery_volt=3.45, tilted=True), T0 + timedelta(hours=7), FULL_AT
    )
    bin_.apply(heat(20), T0 + timedelta(hours=7, minutes=10), FULL_AT)
    bin_.apply(heat(71), T0 + timedelta(hours=7, minutes=20), FULL_AT)
    bin_.apply(Reading(device="bin", distance_mm=900), T0 + timedelta(hours=8), FULL_AT)
    bin_.check_online(T0 + timedelta(hours=12))
    return bin_


def _fields(status: ContainerStatus) -> dict[str, Any]:
    values = {field.name: getattr(status, field.name) for field in dataclasses.fields(status)}
    return {name: list(v) if isinstance(v, deque) else v for name, v in values.items()}


def test_round_trip_through_json() -> None:
    bin_ = _lived_in()
    assert bin_.status.fire_alarm
    assert not bin_.status.online
    assert bin_.status.last_emptied is not None
    stored = json.loads(json.dumps(bin_.to_dict()))
    restored = Container.status_from_dict(stored)
    assert _fields(restored) == _fields(bin_.status)
    again = Container(SPEC, restored)
    assert again.fill_rate() == bin_.fill_rate()
    assert again.predicted_full(FULL_AT) == bin_.predicted_full(FULL_AT)
    assert isinstance(restored.fill_state, FillState)


def test_round_trip_of_fresh_status() -> None:
    stored = json.loads(json.dumps(container().to_dict()))
    assert _fields(Container.status_from_dict(stored)) == _fields(ContainerStatus())


def test_restored_container_keeps_working() -> None:
    bin_ = Container(
        SPEC, Container.status_from_dict(json.loads(json.dumps(_lived_in().to_dict())))
    )
    update = bin_.apply(fill(30), T0 + timedelta(hours=13), FULL_AT)
    assert update.back_online
    assert bin_.status.fill_history[-1] == (T0 + timedelta(hours=13), 30.0)


# Each entry: a stored key, garbage for it, and the attribute that must fall back to "unknown".
_FALLBACKS = {
    "fill_level": None,
    "fill_state": None,
    "distance_mm": None,
    "battery": None,
    "temperature": None,
    "tilted": None,
    "fire_alarm": False,
    "online": True,
    "last_seen": None,
    "last_emptied": None,
}


@pytest.mark.parametrize(
    ("key", "garbage"),
    [
        pytest.param("fill_level", "50", id="fill_level-string"),
        pytest.param("fill_level", True, id="fill_level-bool"),
        pytest.param("fill_level", [50], id="fill_level-list"),
        pytest.param("fill_level", 10**400, id="fill_level-huge-int"),
        pytest.param("fill_state", "overflowing", id="fill_state-unknown"),
        pytest.param("fill_state", 3, id="fill_state-number"),
        pytest.param("fill_state", ["full"], id="fill_state-list"),
        pytest.param("distance_mm", {"v": 1}, id="distance-object"),
        pytest.param("battery", False, id="battery-bool"),
        pytest.param("temperature", "hot", id="temperature-string"),
        pytest.param("tilted", "yes", id="tilted-string"),
        pytest.param("tilted", 1, id="tilted-number"),
        pytest.param("fire_alarm", "true", id="fire_alarm-string"),
        pytest.param("fire_alarm", 1, id="fire_alarm-number"),
        pytest.param("online", "no", id="online-string"),
        pytest.param("online", None, id="online-null"),
        pytest.param("last_seen", 1_772_344_800, id="last_seen-number"),
        pytest.param("last_seen", None, id="last_seen-null"),
        pytest.param("last_emptied", ["2026-03-01"], id="last_emptied-list"),
        # The docstring promises "unreadable parts fall back to unknown".
        pytest.param("last_seen", "yesterday", id="last_seen-unparsable"),
        pytest.param("last_emptied", "2026-13-45T99:00:00", id="last_emptied-invalid-date"),
    ],
)
def test_garbage_field_falls_back(key: str, garbage: Any) -> None:
    good = json.loads(json.dumps(_lived_in().to_dict()))
    expected = _fields(Container.status_from_dict(good))
    expected[key] = _FALLBACKS[key]
    restored = Container.status_from_dict({**good, key: garbage})
    assert _fields(restored) == expected


@pytest.mark.parametrize(
    ("key", "garbage"),
    [
        pytest.param("fill_history", None, id="fill_history-null"),
        pytest.param("fill_history", [], id="fill_history-empty"),
        pytest.param("temperature_history", None, id="temperature_history-null"),
        # unreadable histories: the docstring promises a fallback to unknown (empty)
        pytest.param("fill_history", "garbage", id="fill_history-string"),
        pytest.param("fill_history", 5, id="fill_history-number"),
        pytest.param("fill_history", [["not a date", 50]], id="fill_history-bad-date"),
        pytest.param(
            "fill_history", [["2026-03-01T06:00:00+00:00", "half"]], id="fill_history-bad-level"
        ),
        pytest.param("fill_history", [[1, 2, 3]], id="fill_history-bad-entry"),
        pytest.param(
            "fill_history", [["2026-03-01T06:00:00+00:00", 10**400]], id="fill_history-huge-int"
        ),
        pytest.param("temperature_history", {"a": 1}, id="temperature_history-object"),
    ],
)
def test_garbage_history_falls_back(key: str, garbage: Any) -> None:
    good = json.loads(json.dumps(_lived_in().to_dict()))
    restored = Container.status_from_dict({**good, key: garbage})
    assert list(getattr(restored, key)) == []
    assert restored.fill_level == good["fill_level"]


def test_empty_or_foreign_store_gives_fresh_status() -> None:
    assert _fields(Container.status_from_dict({})) == _fields(ContainerStatus())
    assert _fields(Container.status_from_dict({"version": 7, "whatever": [1, 2]})) == _fields(
        ContainerStatus()
    )


def test_naive_timestamps_in_store_do_not_break_the_container() -> None:
    """A hand-edited or foreign store may hold timestamps without an offset."""
    stored = {
        "fill_level": 40.0,
        "last_seen": "2026-03-01T06:00:00",
        "fill_history": [["2026-03-01T05:00:00", 30.0], ["2026-03-01T06:00:00", 40.0]],
    }
    bin_ = Container(SPEC, Container.status_from_dict(stored))
    # Home Assistant passes aware UTC times; none of these may raise.
    bin_.check_online(T0 + timedelta(hours=1))
    bin_.apply(fill(45), T0 + timedelta(hours=1), FULL_AT)
    bin_.fill_rate()
    bin_.predicted_full(FULL_AT)


def test_a_history_longer_than_the_bound_is_trimmed() -> None:
    stored = container().to_dict() | {
        "fill_history": [(T0.timestamp() + 60 * i, 10 + i * 0.1) for i in range(MAX_HISTORY + 20)]
    }
    restored = Container.status_from_dict(stored)
    assert len(restored.fill_history) == MAX_HISTORY
    assert restored.fill_history[0][1] == pytest.approx(12.0)
    long = [(T0 + timedelta(minutes=i), 10.0 + 0.2 * i) for i in range(MAX_HISTORY + 5)]
    bin_ = container(fill_history=long)
    bin_.apply(fill(40), T0 + timedelta(hours=3), FULL_AT)
    assert len(bin_.status.fill_history) == MAX_HISTORY
    assert bin_.status.fill_history[-1] == (T0 + timedelta(hours=3), 40.0)
    assert bin_.fill_rate() == pytest.approx(fill_rate_per_hour(bin_.status.fill_history))
