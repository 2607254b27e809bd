"""Lighting model: night window, profile overrides, mast graph, boosts, reconciliation, energy."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
import itertools
import json
from typing import Any

import pytest

from custom_components.city_ops.model.lighting import (
    CONFIRM_WITHIN,
    FAULT_GRACE,
    HEADING_KEPT,
    MAX_SPEED_MPS,
    MIN_SPEED_MPS,
    REASK_EVERY,
    SETTLE,
    Command,
    FaultChange,
    FaultKind,
    Follow,
    Lighting,
    LightingProfile,
    Mast,
    MastGraph,
    MastSpec,
    MastStatus,
    bearing_deg,
    follow_from_dict,
    follow_to_dict,
    mast_status_from_dict,
    mast_status_to_dict,
)
from custom_components.city_ops.sources.reading import Reading

T0 = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)
EVENING = time(19, 0)  # dark, outside the default night window (23:30-05:00)
NIGHT = time(1, 0)
PROFILE = LightingProfile()


def spec(name: str, *neighbours: str, **kwargs: Any) -> MastSpec:
    return MastSpec(name=name, latitude=53.7, longitude=10.0, neighbours=neighbours, **kwargs)


def chain(count: int = 6, profile: LightingProfile = PROFILE, **per_mast: MastSpec) -> Lighting:
    """M1 - M2 - ... - Mn, each mast declaring only its predecessor."""
    masts = {}
    for number in range(1, count + 1):
        name = f"M{number}"
        neighbours = (f"M{number - 1}",) if number > 1 else ()
        masts[name] = Mast(per_mast.get(name) or spec(name, *neighbours, profile=profile))
    return Lighting(masts)


def lit(commands: list[Command]) -> dict[str, float]:
    return {command.mast: command.level for command in commands}


def settled(profile: LightingProfile = PROFILE, **per_mast: MastSpec) -> Lighting:
    """A chain that has been told its evening level once (dark, outside the night window)."""
    lighting = chain(profile=profile, **per_mast)
    lighting.reconcile(T0, EVENING, sun_down=True)
    return lighting


# -- profile ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "local", "inside"),
    [
        pytest.param(time(23, 30), time(5, 0), time(23, 29, 59), False, id="cross-before"),
        pytest.param(time(23, 30), time(5, 0), time(23, 30), True, id="cross-start-inclusive"),
        pytest.param(time(23, 30), time(5, 0), time(0, 0), True, id="cross-midnight"),
        pytest.param(time(23, 30), time(5, 0), time(4, 59, 59), True, id="cross-last-second"),
        pytest.param(time(23, 30), time(5, 0), time(5, 0), False, id="cross-end-exclusive"),
        pytest.param(time(23, 30), time(5, 0), time(12, 0), False, id="cross-noon"),
        pytest.param(time(1, 0), time(4, 0), time(0, 59), False, id="same-day-before"),
        pytest.param(time(1, 0), time(4, 0), time(1, 0), True, id="same-day-start"),
        pytest.param(time(1, 0), time(4, 0), time(3, 59), True, id="same-day-inside"),
        pytest.param(time(1, 0), time(4, 0), time(4, 0), False, id="same-day-end"),
        pytest.param(time(1, 0), time(4, 0), time(23, 0), False, id="same-day-after"),
        pytest.param(time(22, 0), time(22, 0), time(22, 0), False, id="empty-at-start"),
        pytest.param(time(22, 0), time(22, 0), time(3, 0), False, id="empty-at-night"),
        pytest.param(time(22, 0), time(22, 0), time(12, 0), False, id="empty-at-noon"),
    ],
)
def test_night_window(start: time, end: time, local: time, inside: bool) -> None:
    profile = LightingProfile(night_start=start, night_end=end)
    assert profile.in_night_window(local) is inside


@pytest.mark.parametrize(
    ("overrides", "changed"),
    [
        pytest.param({}, {}, id="none"),
        pytest.param({"base_level": None, "hold_s": None}, {}, id="all-unset"),
        pytest.param({"base_level": 50.0}, {"base_level": 50.0}, id="base"),
        pytest.param(
            {"base_level": 0.0, "boost_level": 80.0, "hold_s": 30},
            {"base_level": 0.0, "boost_level": 80.0, "hold_s": 30},
            id="zero-is-a-value",
        ),
        pytest.param({"boost_level": None, "hold_s": 600}, {"hold_s": 600}, id="mixed"),
    ],
)
def test_profile_overrides(overrides: dict[str, Any], changed: dict[str, Any]) -> None:
    profile = PROFILE.with_overrides(overrides)
    assert profile == dataclasses.replace(PROFILE, **changed)
    if not changed:
        assert profile is PROFILE
    assert LightingProfile() == PROFILE  # the site's profile is never changed in place


# -- graph -----------------------------------------------------------------------------------


def test_graph_is_symmetric_when_only_one_side_declares() -> None:
    graph = MastGraph([spec("M1", "M2"), spec("M2"), spec("M3", "M2"), spec("M4")])
    assert graph.neighbours("M1") == {"M2"}
    assert graph.neighbours("M2") == {"M1", "M3"}
    assert graph.neighbours("M3") == {"M2"}
    assert graph.neighbours("M4") == set()


def test_graph_ignores_unknown_neighbours_and_itself() -> None:
    graph = MastGraph([spec("M1", "Ghost", "M1", "M2"), spec("M2", "M1")])
    assert graph.neighbours("M1") == {"M2"}
    assert graph.neighbours("Ghost") == set()
    assert graph.corridor("Ghost", 2) == {}
    # The result is a copy: changing it does not change the graph.
    graph.neighbours("M1").add("M9")
    assert graph.neighbours("M1") == {"M2"}


CHAIN = [spec(f"M{n}", *([f"M{n - 1}"] if n > 1 else [])) for n in range(1, 7)]
#            M7
#            |
# M1 - M2 - M3 - M4
#            |
#            M5 - M6
BRANCHING = [
    spec("M1", "M2"),
    spec("M2", "M3"),
    spec("M3", "M4", "M5", "M7"),
    spec("M4"),
    spec("M5", "M6"),
    spec("M6"),
    spec("M7"),
]


@pytest.mark.parametrize(
    ("specs", "start", "hops", "expected"),
    [
        pytest.param(CHAIN, "M3", 0, {"M3": 0}, id="chain-0"),
        pytest.param(CHAIN, "M3", 1, {"M3": 0, "M2": 1, "M4": 1}, id="chain-1"),
        pytest.param(CHAIN, "M3", 2, {"M3": 0, "M2": 1, "M4": 1, "M1": 2, "M5": 2}, id="chain-2"),
        pytest.param(CHAIN, "M1", 2, {"M1": 0, "M2": 1, "M3": 2}, id="chain-end"),
        pytest.param(CHAIN, "M6", 10, {f"M{n}": 6 - n for n in range(1, 7)}, id="chain-all"),
        pytest.param(BRANCHING, "M3", 0, {"M3": 0}, id="branch-0"),
        pytest.param(
            BRANCHING, "M3", 1, {"M3": 0, "M2": 1, "M4": 1, "M5": 1, "M7": 1}, id="branch-1"
        ),
        pytest.param(
            BRANCHING,
            "M3",
            2,
            {"M3": 0, "M2": 1, "M4": 1, "M5": 1, "M7": 1, "M1": 2, "M6": 2},
            id="branch-2",
        ),
        pytest.param(BRANCHING, "M6", 2, {"M6": 0, "M5": 1, "M3": 2}, id="branch-from-leaf"),
    ],
)
def test_corridor(specs: list[MastSpec], start: str, hops: int, expected: dict[str, int]) -> None:
    assert MastGraph(specs).corridor(start, hops) == expected


def test_corridor_takes_the_shortest_way_round_a_loop() -> None:
    graph = MastGraph([spec("A", "B"), spec("B", "C"), spec("C", "D"), spec("D", "A")])
    assert graph.corridor("A", 2) == {"A": 0, "B": 1, "D": 1, "C": 2}


# -- boosts ----------------------------------------------------------------------------------


def boost_ends(lighting: Lighting) -> dict[str, datetime]:
    return {
        name: mast.status.boost_until
        for name, mast in lighting.masts.items()
        if mast.status.boost_until is not None
    }


def test_boost_lights_the_corridor() -> None:
    lighting = chain()
    touched = lighting.boost(["M3"], T0)
    assert sorted(touched) == ["M2", "M3", "M4"]
    until = T0 + timedelta(seconds=PROFILE.hold_s)
    assert boost_ends(lighting) == {"M2": until, "M3": until, "M4": until}
    assert lighting.masts["M3"].boosted(T0)
    assert not lighting.masts["M3"].boosted(until)


@pytest.mark.parametrize(
    ("hops", "expected"),
    [
        pytest.param(0, ["M3"], id="0"),
        pytest.param(2, ["M1", "M2", "M3", "M4", "M5"], id="2"),
    ],
)
def test_boost_radius_overrides_the_profile(hops: int, expected: list[str]) -> None:
    lighting = chain()
    assert sorted(lighting.boost(["M3"], T0, hops=hops)) == expected
    assert sorted(boost_ends(lighting)) == expected


def test_boost_radius_follows_the_starting_masts_profile() -> None:
    lighting = chain(profile=LightingProfile(corridor_hops=2))
    assert sorted(lighting.boost(["M1"], T0)) == ["M1", "M2", "M3"]


def test_boost_of_several_masts_reports_each_once() -> None:
    lighting = chain()
    assert sorted(lighting.boost(["M2", "M3", "Ghost"], T0)) == ["M1", "M2", "M3", "M4"]
    assert lighting.boost(["Ghost"], T0) == []


def test_overlapping_boosts_extend_and_never_shorten() -> None:
    lighting = chain()
    lighting.boost(["M3"], T0)  # M2..M4 until T0+120
    later = T0 + timedelta(seconds=60)
    lighting.boost(["M5"], later)  # M4..M6 until T0+180
    ends = boost_ends(lighting)
    assert ends["M3"] == T0 + timedelta(seconds=120)
    assert ends["M4"] == T0 + timedelta(seconds=180)
    assert ends["M6"] == T0 + timedelta(seconds=180)
    # A short boost inside a longer one changes nothing.
    lighting.boost(["M4"], later, hold_s=5)
    assert boost_ends(lighting) == ends


# -- boosts held while the motion goes on ------------------------------------------------------


def moving(lighting: Lighting, name: str, at: datetime, on: bool = True) -> None:
    lighting.masts[name].apply(Reading(device=name, occupancy=on), at)


def test_a_followed_boost_is_renewed_while_the_motion_goes_on() -> None:
    lighting = chain()
    moving(lighting, "M3", T0)
    lighting.boost(["M3"], T0, hold_s=60, follow_until=T0 + timedelta(minutes=15))
    assert lighting.next_expiry(T0) == T0 + timedelta(seconds=30)  # half the hold
    # Ten minutes of motion without a message: renewed every half hold, never run out.
    now = T0
    for _ in range(20):
        now = lighting.next_expiry(now) or now
        assert all(lighting.masts[name].boosted(now) for name in ("M2", "M3", "M4"))
        assert sorted(lighting.renew(now)) == ["M2", "M3", "M4"]
    assert now == T0 + timedelta(minutes=10)
    assert boost_ends(lighting)["M3"] == now + timedelta(seconds=60)
    # The motion ends: the hold counts from now, and nothing is renewed any more.
    end = now + timedelta(seconds=5)
    moving(lighting, "M3", end, on=False)
    assert sorted(lighting.motion_ended("M3", end)) == ["M2", "M3", "M4"]
    assert boost_ends(lighting)["M3"] == end + timedelta(seconds=60)
    assert lighting.follows == {}
    assert lighting.next_expiry(end) == end + timedelta(seconds=60)
    assert lighting.motion_ended("M3", end) == []  # once


def test_a_boost_without_motion_at_its_mast_is_not_followed() -> None:
    lighting = chain()
    lighting.boost(["M3"], T0, follow_until=T0 + timedelta(minutes=15))  # no motion seen
    assert lighting.follows == {}
    moving(lighting, "M3", T0)
    lighting.boost(["M3"], T0)  # a boost that does not ask to follow
    assert lighting.follows == {}


def test_a_stuck_sensor_is_let_go_after_the_longest_motion() -> None:
    lighting = chain()
    moving(lighting, "M3", T0)
    limit = T0 + timedelta(minutes=5)
    lighting.boost(["M3"], T0, hold_s=60, follow_until=limit)
    now = T0
    while "M3" in lighting.follows:
        now = lighting.next_expiry(now) or now
        lighting.renew(now)
    # Let go at the limit with one last boost: back to the profile one hold later.
    assert now == limit
    assert boost_ends(lighting)["M3"] == limit + timedelta(seconds=60)
    assert lighting.next_expiry(now) == limit + timedelta(seconds=60)
    # Boosting again during the same motion episode keeps the episode's limit.
    lighting.boost(["M3"], now, hold_s=60, follow_until=now + timedelta(minutes=5))
    lighting.follows["M3"].until = limit  # as if followed from the start
    lighting.boost(["M3"], now, hold_s=60, follow_until=now + timedelta(minutes=5))
    assert lighting.follows["M3"].until == limit


def test_a_motion_that_ended_unseen_lets_its_boost_go_at_the_next_renewal() -> None:
    lighting = chain()
    moving(lighting, "M3", T0)
    lighting.boost(["M3"], T0, hold_s=60, follow_until=T0 + timedelta(minutes=15))
    # The sensor's "no motion" came while nothing renewed (folded into the status only).
    moving(lighting, "M3", T0 + timedelta(seconds=10), on=False)
    renew = T0 + timedelta(seconds=30)
    assert sorted(lighting.renew(renew)) == ["M2", "M3", "M4"]
    assert lighting.follows == {}
    assert boost_ends(lighting)["M3"] == renew + timedelta(seconds=60)


def test_a_removed_mast_is_followed_no_more() -> None:
    lighting = chain()
    moving(lighting, "M3", T0)
    lighting.boost(["M3"], T0, follow_until=T0 + timedelta(minutes=15))
    lighting.remove("M3")
    assert lighting.follows == {}


def test_a_held_boost_survives_storage() -> None:
    follow = Follow(2, 45.0, T0 + timedelta(seconds=22), T0 + timedelta(minutes=15))
    stored = json.loads(json.dumps(follow_to_dict(follow)))
    assert follow_from_dict(stored) == follow
    assert follow_from_dict({**stored, "hops": None, "hold_s": None}) == Follow(
        None, None, follow.renew_at, follow.until
    )
    for broken in (
        None,
        "x",
        {**stored, "renew_at": "soon"},
        {**stored, "until": None},
        {**stored, "hops": -1},
        {**stored, "hops": True},
        {**stored, "hold_s": "60"},
        {**stored, "hold_s": 0},
    ):
        assert follow_from_dict(broken) is None


def test_each_mast_holds_for_its_own_time_unless_the_call_says() -> None:
    lighting = chain(M4=spec("M4", "M3", profile=LightingProfile(hold_s=300)))
    lighting.boost(["M3"], T0)
    ends = boost_ends(lighting)
    assert ends["M2"] == ends["M3"] == T0 + timedelta(seconds=120)
    assert ends["M4"] == T0 + timedelta(seconds=300)
    lighting = chain(M4=spec("M4", "M3", profile=LightingProfile(hold_s=300)))
    lighting.boost(["M3"], T0, hold_s=600)
    assert set(boost_ends(lighting).values()) == {T0 + timedelta(seconds=600)}


# -- reconciliation --------------------------------------------------------------------------


def test_first_reconcile_commands_every_mast_and_then_nothing() -> None:
    lighting = chain()
    commands = lighting.reconcile(T0, EVENING, sun_down=True)
    assert commands == [Command(f"M{n}", 30.0, 1.0) for n in range(1, 7)]
    assert lighting.reconcile(T0 + timedelta(minutes=1), EVENING, sun_down=True) == []
    status = lighting.masts["M1"].status
    assert status.commanded_level == 30.0
    assert status.commanded_at == T0


def test_reconcile_sends_only_masts_that_differ_with_transitions_up_and_down() -> None:
    lighting = settled()
    lighting.boost(["M3"], T0)
    commands = lighting.reconcile(T0, EVENING, sun_down=True)
    assert sorted(commands, key=lambda c: c.mast) == [
        Command("M2", 100.0, 1.0),
        Command("M3", 100.0, 1.0),
        Command("M4", 100.0, 1.0),
    ]
    end = lighting.next_expiry(T0)
    assert end == T0 + timedelta(seconds=120)
    assert lighting.reconcile(end - timedelta(seconds=1), EVENING, sun_down=True) == []
    commands = lighting.reconcile(end, EVENING, sun_down=True)
    assert sorted(commands, key=lambda c: c.mast) == [
        Command("M2", 30.0, 5.0),
        Command("M3", 30.0, 5.0),
        Command("M4", 30.0, 5.0),
    ]


def test_reconcile_can_be_limited_to_named_masts() -> None:
    lighting = chain()
    assert lit(lighting.reconcile(T0, EVENING, True, ["M2", "M5"])) == {"M2": 30.0, "M5": 30.0}
    assert sorted(lit(lighting.reconcile(T0, EVENING, True))) == ["M1", "M3", "M4", "M6"]


def test_half_a_percent_is_not_worth_a_command() -> None:
    lighting = settled()
    for mast in lighting.masts.values():
        mast.status.commanded_level = 30.4
    assert lighting.reconcile(T0, EVENING, sun_down=True) == []
    lighting.masts["M1"].status.commanded_level = 30.5
    assert lit(lighting.reconcile(T0, EVENING, sun_down=True)) == {"M1": 30.0}


@pytest.mark.parametrize(
    ("profile", "local", "boosted", "expected"),
    [
        pytest.param(PROFILE, EVENING, False, (30.0, 0), id="evening-base"),
        pytest.param(PROFILE, NIGHT, False, (10.0, 0), id="night-level"),
        pytest.param(LightingProfile(night_level=0), NIGHT, False, (0.0, 0), id="night-off"),
        pytest.param(
            LightingProfile(warm_kelvin=2200), NIGHT, False, (10.0, 2200), id="night-warm"
        ),
        pytest.param(
            LightingProfile(warm_kelvin=2200), EVENING, False, (30.0, 0), id="evening-not-warm"
        ),
        pytest.param(
            LightingProfile(warm_kelvin=2200), NIGHT, True, (100.0, 2200), id="night-boost-warm"
        ),
        pytest.param(
            LightingProfile(night_level=0), NIGHT, True, (100.0, 0), id="night-off-boost-lights"
        ),
    ],
)
def test_level_and_colour_for_the_time_of_night(
    profile: LightingProfile, local: time, boosted: bool, expected: tuple[float, int]
) -> None:
    mast = Mast(spec("M1", profile=profile))
    if boosted:
        mast.status.boost_until = T0 + timedelta(minutes=1)
    assert mast.wanted(T0, local, sun_down=True) == expected


def test_entering_the_night_window_dims_and_warms() -> None:
    lighting = settled(LightingProfile(warm_kelvin=2200))
    assert lighting.reconcile(T0, NIGHT, sun_down=True) == [
        Command(f"M{n}", 10.0, 5.0, 2200) for n in range(1, 7)
    ]


def test_night_window_warms_even_when_the_level_stays() -> None:
    """Night level equal to the base level: the warm colour must still be sent."""
    lighting = settled(LightingProfile(night_level=30, warm_kelvin=2200))
    commands = lighting.reconcile(T0, NIGHT, sun_down=True)
    assert [(c.mast, c.level, c.kelvin) for c in commands] == [
        (f"M{n}", 30.0, 2200) for n in range(1, 7)
    ]


def test_daylight_switches_off_even_when_boosted() -> None:
    lighting = settled()
    lighting.boost(["M3"], T0)
    commands = lighting.reconcile(T0, time(12, 0), sun_down=False)
    assert commands == [Command(f"M{n}", 0.0, 5.0) for n in range(1, 7)]


@pytest.mark.parametrize(
    ("lux", "sun_down", "dark"),
    [
        pytest.param(None, True, True, id="no-sensor-sun-down"),
        pytest.param(None, False, False, id="no-sensor-sun-up"),
        pytest.param(5.0, False, True, id="dark-sensor-beats-sun"),
        pytest.param(500.0, True, False, id="bright-sensor-beats-sun"),
        pytest.param(19.9, True, True, id="just-under-threshold"),
        pytest.param(20.0, False, False, id="threshold-is-light"),
    ],
)
def test_darkness_by_light_sensor_or_sun(lux: float | None, sun_down: bool, dark: bool) -> None:
    mast = Mast(spec("M1"), MastStatus(illuminance_lx=lux))
    assert mast.is_dark(sun_down) is dark
    assert mast.wanted(T0, EVENING, sun_down) == ((30.0, 0) if dark else (0.0, 0))


def test_light_sensor_follows_the_masts_own_threshold() -> None:
    mast = Mast(spec("M1", profile=LightingProfile(lux_threshold=100)), MastStatus())
    mast.apply(Reading(device="m1", illuminance_lx=50), T0)
    assert mast.is_dark(sun_down=False)


def test_only_masts_with_a_dark_sensor_light_in_daylight() -> None:
    lighting = chain()
    lighting.masts["M2"].apply(Reading(device="m2", illuminance_lx=3), T0)
    assert lit(lighting.reconcile(T0, time(16, 0), sun_down=False)) == {
        "M1": 0.0,
        "M2": 30.0,
        "M3": 0.0,
        "M4": 0.0,
        "M5": 0.0,
        "M6": 0.0,
    }


def test_hand_override_wins_until_it_expires() -> None:
    lighting = settled()
    m2 = lighting.masts["M2"]
    m2.override(80.0, T0, timedelta(hours=1))
    assert lit(lighting.reconcile(T0, EVENING, sun_down=True)) == {"M2": 80.0}
    # A boost, daylight and the night window all yield to the person who set the lamp.
    lighting.boost(["M3"], T0)
    assert lit(lighting.reconcile(T0, EVENING, sun_down=True)) == {"M3": 100.0, "M4": 100.0}
    assert m2.wanted(T0, NIGHT, sun_down=True) == (80.0, 0)
    assert m2.wanted(T0, time(12, 0), sun_down=False) == (80.0, 0)
    assert lighting.next_expiry(T0) == T0 + timedelta(seconds=120)
    end = T0 + timedelta(hours=1)
    assert lighting.next_expiry(T0 + timedelta(seconds=120)) == end
    assert lighting.reconcile(end - timedelta(seconds=1), EVENING, True) == [
        Command("M3", 30.0, 5.0),
        Command("M4", 30.0, 5.0),
    ]
    assert lighting.reconcile(end, EVENING, True) == [Command("M2", 30.0, 5.0)]


def test_hand_override_off_keeps_the_lamp_off_in_the_dark() -> None:
    lighting = settled()
    lighting.masts["M2"].override(0.0, T0, timedelta(hours=1))
    assert lighting.reconcile(T0, EVENING, sun_down=True) == [Command("M2", 0.0, 5.0)]
    lighting.boost(["M2"], T0)
    assert lit(lighting.reconcile(T0, EVENING, True)) == {"M1": 100.0, "M3": 100.0}


def test_next_expiry() -> None:
    lighting = chain()
    assert lighting.next_expiry(T0) is None
    lighting.boost(["M1"], T0, hold_s=300)
    lighting.masts["M5"].override(50, T0, timedelta(seconds=200))
    lighting.boost(["M6"], T0 - timedelta(hours=1))  # long over
    assert lighting.next_expiry(T0) == T0 + timedelta(seconds=200)
    assert lighting.next_expiry(T0 + timedelta(seconds=200)) == T0 + timedelta(seconds=300)
    assert lighting.next_expiry(T0 + timedelta(seconds=300)) is None


# -- level, power and energy -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "level"),
    [
        pytest.param({}, 0.0, id="nothing-known"),
        pytest.param({"commanded_level": 30.0}, 30.0, id="commanded"),
        pytest.param({"on": True}, 100.0, id="on-without-level"),
        pytest.param({"on": True, "commanded_level": 30.0}, 30.0, id="on-commanded"),
        pytest.param({"on": True, "brightness": 127}, 50.0, id="reported"),
        pytest.param({"brightness": 254, "commanded_level": 30.0}, 100.0, id="report-wins"),
        pytest.param({"on": False, "brightness": 254}, 0.0, id="off-wins"),
    ],
)
def test_level_as_reported_else_as_commanded(status: dict[str, Any], level: float) -> None:
    assert Mast(spec("M1"), MastStatus(**status)).level() == level


def test_power_measured_else_estimated_from_level() -> None:
    mast = Mast(spec("M1", rated_power_w=60), MastStatus(commanded_level=50.0))
    assert mast.power_w() == (30.0, False)
    mast.apply(Reading(device="m1", power_w=27.5), T0)
    assert mast.power_w() == (27.5, True)


def test_energy_estimate_integrates_level_times_rated_power() -> None:
    lighting = chain(2, profile=LightingProfile(base_level=50))
    lighting.tick(T0, sun_down=True)
    lighting.reconcile(T0, EVENING, sun_down=True)
    lighting.tick(T0 + timedelta(hours=2), sun_down=True)
    # 40 W at 50 % for 2 h = 40 Wh each.
    assert lighting.masts["M1"].status.energy_kwh == pytest.approx(0.04)
    assert lighting.energy_kwh() == pytest.approx(0.08)
    assert not lighting.masts["M1"].status.measured_energy


def test_energy_estimate_follows_level_changes() -> None:
    lighting = chain(1)
    mast = lighting.masts["M1"]
    lighting.reconcile(T0, EVENING, sun_down=True)  # 30 % = 12 W
    lighting.boost(["M1"], T0 + timedelta(hours=1), hold_s=1800)
    lighting.reconcile(T0 + timedelta(hours=1), EVENING, sun_down=True)  # 100 % = 40 W
    mast.apply(Reading(device="m1", on=False), T0 + timedelta(hours=1, minutes=30))  # 0 W
    lighting.tick(T0 + timedelta(hours=3), sun_down=True)
    assert mast.status.energy_kwh == pytest.approx(0.012 + 0.020)


def test_energy_integrates_measured_power_when_there_is_no_meter() -> None:
    mast = Mast(spec("M1"), MastStatus(commanded_level=100.0))
    mast.apply(Reading(device="m1", power_w=25), T0)
    mast.accumulate(T0 + timedelta(hours=2))
    assert mast.status.energy_kwh == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("counters", "energy"),
    [
        pytest.param([100.0], 0.0, id="first-is-baseline"),
        pytest.param([100.0, 100.5, 101.25], 1.25, id="increases"),
        pytest.param([100.0, 100.5, 100.5], 0.5, id="repeat"),
        pytest.param([100.0, 100.5, 0.0, 0.25], 0.75, id="reset-new-baseline"),
        pytest.param([100.0, 100.5, 99.0, 99.5], 1.0, id="replaced-meter"),
    ],
)
def test_meter_counts_only_increases(counters: list[float], energy: float) -> None:
    mast = Mast(spec("M1"), MastStatus(commanded_level=100.0))
    mast.accumulate(T0)
    for minute, counter in enumerate(counters):
        mast.apply(Reading(device="m1", energy_kwh=counter), T0 + timedelta(minutes=minute))
    # The estimate up to the first counter (40 W for 0 min) is kept; after it only the meter.
    mast.accumulate(T0 + timedelta(hours=5))
    assert mast.status.energy_kwh == pytest.approx(energy)
    assert mast.status.measured_energy
    assert mast.status.meter_kwh == counters[-1]


def test_meter_keeps_the_estimate_made_before_it_reported() -> None:
    mast = Mast(spec("M1"), MastStatus(commanded_level=50.0))  # 20 W
    mast.accumulate(T0)
    mast.apply(Reading(device="m1", energy_kwh=7.0), T0 + timedelta(hours=1))
    mast.apply(Reading(device="m1", energy_kwh=7.1), T0 + timedelta(hours=2))
    mast.accumulate(T0 + timedelta(hours=3))
    assert mast.status.energy_kwh == pytest.approx(0.02 + 0.1)


def test_savings_against_full_power_while_dark() -> None:
    lighting = chain(2)
    assert lighting.savings_percent() is None
    lighting.tick(T0, sun_down=True)
    lighting.reconcile(T0, EVENING, sun_down=True)  # 30 %
    lighting.tick(T0 + timedelta(hours=1), sun_down=True)
    assert lighting.reference_kwh == pytest.approx(0.08)
    assert lighting.energy_kwh() == pytest.approx(0.024)
    assert lighting.savings_percent() == 70.0
    # Daylight adds nothing to the reference (and the masts are off).
    lighting.reconcile(T0 + timedelta(hours=1), time(8, 0), sun_down=False)
    lighting.tick(T0 + timedelta(hours=5), sun_down=False)
    assert lighting.reference_kwh == pytest.approx(0.08)
    assert lighting.savings_percent() == 70.0
    assert lighting.rated_power_w() == 80.0


def test_savings_per_path_are_the_site_accounting_split_by_path() -> None:
    """Each path's energy and reference are the sums of its masts over the same ticks."""
    paths = {"M1": "Allee", "M2": "Allee", "M3": "Seeweg", "M4": ""}
    lighting = chain(
        4,
        **{
            name: spec(name, *((f"M{int(name[1]) - 1}",) if name != "M1" else ()), path=path)
            for name, path in paths.items()
        },
    )
    assert lighting.paths() == ["Allee", "Seeweg"]
    assert lighting.savings_percent("Allee") is None
    lighting.tick(T0, sun_down=True)
    lighting.reconcile(T0, EVENING, sun_down=True)  # every mast at 30 %
    lighting.boost(["M3"], T0, hops=0, hold_s=3600)  # Seeweg's one mast at 100 % for the hour
    lighting.reconcile(T0, EVENING, sun_down=True)
    lighting.tick(T0 + timedelta(hours=1), sun_down=True)
    assert lighting.counted_by_path["Allee"] == pytest.approx((0.024, 0.08))
    assert lighting.counted_by_path["Seeweg"] == pytest.approx((0.04, 0.04))
    assert lighting.counted_by_path[""] == pytest.approx((0.012, 0.04))
    assert lighting.savings_percent("Allee") == 70.0
    assert lighting.savings_percent("Seeweg") == 0.0
    assert lighting.savings_percent("Nowhere") is None
    # The paths add up to the site: one accounting, split.
    energy = sum(pair[0] for pair in lighting.counted_by_path.values())
    reference = sum(pair[1] for pair in lighting.counted_by_path.values())
    assert (energy, reference) == pytest.approx(lighting.counted)
    assert lighting.savings_percent() == round(100 * (1 - 0.076 / 0.16), 1)
    # Read between ticks, nothing moves: the share does not depend on when it is read.
    lighting.masts["M1"].accumulate(T0 + timedelta(hours=1, minutes=30), dark=True)
    assert lighting.savings_percent("Allee") == 70.0


def test_a_lamp_nobody_told_or_heard_yet_counts_neither_energy_nor_reference() -> None:
    """A new mast before its first command is not a lamp saving 100 % of its power."""
    lighting = chain(1)
    lighting.tick(T0, sun_down=True)
    lighting.tick(T0 + timedelta(hours=1), sun_down=True)
    assert lighting.counted == (0.0, 0.0)
    assert lighting.savings_percent() is None
    lighting.reconcile(T0 + timedelta(hours=1), EVENING, sun_down=True)  # 30 %
    lighting.tick(T0 + timedelta(hours=2), sun_down=True)
    assert lighting.counted == pytest.approx((0.012, 0.04))
    assert lighting.savings_percent() == 70.0


def test_savings_never_negative() -> None:
    lighting = chain(1)
    lighting.tick(T0, sun_down=True)
    lighting.masts["M1"].apply(Reading(device="m1", power_w=400), T0)
    lighting.tick(T0 + timedelta(hours=1), sun_down=True)
    assert lighting.savings_percent() == 0.0


# -- faults (TALQ LampMonitor kinds) --------------------------------------------------------

SETTLED = SETTLE + timedelta(seconds=1)


def running(level: float = 30.0, sun_down: bool = True) -> tuple[Lighting, Mast]:
    """One 40 W mast told `level` at T0."""
    lighting = chain(1)
    mast = lighting.masts["M1"]
    lighting.command(mast, level, 0, T0, sun_down)
    return lighting, mast


def report(mast: Mast, at: timedelta, **values: Any) -> None:
    mast.apply(Reading(device="mast-1", **values), T0 + at)


def faults(mast: Mast, at: timedelta, sun_down: bool = True) -> dict[FaultKind, datetime]:
    mast.check_faults(T0 + at, sun_down)
    return dict(mast.status.faults)


def test_lamp_failure_after_the_grace_from_the_first_low_report() -> None:
    _, mast = running(30)
    report(mast, SETTLED, on=True, brightness=76, power_w=0.4)
    assert faults(mast, SETTLED + FAULT_GRACE - timedelta(seconds=1)) == {}
    assert faults(mast, SETTLED + FAULT_GRACE) == {FaultKind.LAMP_FAILURE: T0 + SETTLED}


def test_boosts_and_the_same_level_again_do_not_restart_the_grace() -> None:
    """A busy path boosts the dead lamp again and again: the fault still comes in time."""
    lighting, mast = running(30)
    report(mast, SETTLED, on=True, brightness=76, power_w=0.4)
    at = SETTLED
    for _ in range(6):  # boost, answer within the settle time, back to base, answer again
        at += timedelta(seconds=20)
        lighting.command(mast, 100, 0, T0 + at, True)
        report(mast, at + timedelta(seconds=1), on=True, brightness=254, power_w=0.4)
        lighting.command(mast, 30, 0, T0 + at + timedelta(seconds=2), True)
        lighting.command(mast, 30, 0, T0 + at + timedelta(seconds=3), True)
        report(mast, at + timedelta(seconds=3), on=True, brightness=76, power_w=0.4)
    assert faults(mast, SETTLED + FAULT_GRACE) == {FaultKind.LAMP_FAILURE: T0 + SETTLED}


@pytest.mark.parametrize(
    ("level", "watts", "kind"),
    [
        pytest.param(30, 0.59, FaultKind.LAMP_FAILURE, id="under-5pc-of-30pc"),
        pytest.param(30, 0.61, None, id="just-over-5pc"),
        pytest.param(30, 11.0, None, id="healthy-30pc"),
        pytest.param(100, 1.9, FaultKind.LAMP_FAILURE, id="under-5pc-of-100pc"),
        pytest.param(30, 17.6, None, id="at-130pc-plus-standby"),
        pytest.param(30, 17.7, FaultKind.POWER_TOO_HIGH, id="over-130pc"),
        pytest.param(0, 0.0, None, id="off-dark"),
    ],
)
def test_power_judged_on_the_commanded_level(
    level: float, watts: float, kind: FaultKind | None
) -> None:
    _, mast = running(level)
    report(mast, SETTLED, on=level > 0, power_w=watts)
    assert list(faults(mast, SETTLED + FAULT_GRACE)) == ([kind] if kind else [])


def test_power_reports_while_the_lamp_settles_prove_nothing() -> None:
    _, mast = running(30)
    report(mast, timedelta(seconds=1), on=True, power_w=0.0)  # the meter lags the switch-on
    report(mast, timedelta(seconds=5), on=True, power_w=60.0)  # still the old reading
    assert faults(mast, SETTLED + FAULT_GRACE) == {}
    assert mast.status.suspected == {}


def test_a_healthy_report_clears_lamp_failure_and_a_dark_mast_off_keeps_it() -> None:
    lighting, mast = running(30)
    report(mast, SETTLED, on=True, power_w=0.2)
    assert FaultKind.LAMP_FAILURE in faults(mast, SETTLED + FAULT_GRACE)
    lighting.command(mast, 0, 0, T0 + timedelta(minutes=5), True)
    report(mast, timedelta(minutes=6), on=False, power_w=0.0)  # off: nothing to judge
    assert FaultKind.LAMP_FAILURE in faults(mast, timedelta(minutes=6))
    lighting.command(mast, 30, 0, T0 + timedelta(minutes=7), True)
    report(mast, timedelta(minutes=8), on=True, power_w=11.5)  # lamp replaced
    changes = mast.check_faults(T0 + timedelta(minutes=8), True)
    assert changes == [FaultChange("M1", FaultKind.LAMP_FAILURE, T0 + SETTLED, False)]
    assert mast.fault() is None


@pytest.mark.parametrize(
    ("lux", "burning", "fault"),
    [
        pytest.param(None, True, True, id="burning-by-day"),
        pytest.param(None, False, False, id="off-by-day"),
        pytest.param(2.0, True, False, id="by-day-but-sensor-dark"),
    ],
)
def test_day_burner(lux: float | None, burning: bool, fault: bool) -> None:
    lighting = chain(1)
    mast = lighting.masts["M1"]
    if lux is not None:
        report(mast, timedelta(0), illuminance_lx=lux)
    level, _ = mast.wanted(T0, time(12, 0), sun_down=False)
    lighting.command(mast, level, 0, T0, False)
    report(mast, SETTLED, on=burning, brightness=200 if burning else 0)
    assert faults(mast, SETTLED, sun_down=False) == {}
    found = faults(mast, SETTLED + FAULT_GRACE, sun_down=False)
    assert (FaultKind.DAY_BURNER in found) is fault


def test_an_unanswered_command_is_asked_again_before_it_is_a_fault() -> None:
    _, mast = running(30)
    assert not mast.needs_reask(T0 + CONFIRM_WITHIN - timedelta(seconds=1))
    assert mast.needs_reask(T0 + CONFIRM_WITHIN)
    assert faults(mast, FAULT_GRACE + timedelta(minutes=1)) == {}  # never asked: no fault
    mast.reasked(T0 + CONFIRM_WITHIN)
    assert not mast.needs_reask(T0 + CONFIRM_WITHIN + timedelta(seconds=1))
    assert faults(mast, FAULT_GRACE - timedelta(seconds=1)) == {}
    assert faults(mast, FAULT_GRACE) == {FaultKind.NO_COMMUNICATION: T0}
    assert mast.needs_reask(T0 + CONFIRM_WITHIN + REASK_EVERY)
    report(mast, FAULT_GRACE + timedelta(seconds=5), on=True, brightness=76)  # it answers
    assert faults(mast, FAULT_GRACE + timedelta(seconds=5)) == {}
    assert not mast.needs_reask(T0 + timedelta(hours=1))


def test_an_answer_to_the_reask_clears_the_suspicion() -> None:
    _, mast = running(30)
    mast.reasked(T0 + CONFIRM_WITHIN)
    report(mast, CONFIRM_WITHIN + timedelta(seconds=0.1), on=True, brightness=76)
    assert faults(mast, timedelta(hours=1)) == {}


def test_a_motion_report_does_not_confirm_the_luminaire() -> None:
    """A separate PIR on the mast keeps reporting while the luminaire stays silent."""
    _, mast = running(30)
    mast.reasked(T0 + CONFIRM_WITHIN)
    mast.apply(Reading(device="pir-1", occupancy=True), T0 + timedelta(seconds=30))
    assert FaultKind.NO_COMMUNICATION in faults(mast, FAULT_GRACE)


def test_offline_is_no_communication_at_once_and_online_clears_it() -> None:
    _, mast = running(30)
    report(mast, timedelta(seconds=1), on=True, brightness=76)
    assert mast.set_online(False, T0 + timedelta(minutes=1))
    assert not mast.set_online(False, T0 + timedelta(minutes=2))
    assert not mast.online
    changes = mast.check_faults(T0 + timedelta(minutes=1), True)
    assert changes == [
        FaultChange("M1", FaultKind.NO_COMMUNICATION, T0 + timedelta(minutes=1), True)
    ]
    assert mast.check_faults(T0 + timedelta(minutes=3), True) == []  # raised once
    assert mast.set_online(True, T0 + timedelta(minutes=4))
    assert mast.check_faults(T0 + timedelta(minutes=4), True)[0].active is False
    assert mast.fault() is None


def test_a_mast_back_online_after_ticks_while_away_has_no_fault_left() -> None:
    """Commands and questions the mast could not hear while offline prove nothing once back.

    Away for minutes, it was told a level and asked again on the minute ticks; back online,
    its no-communication fault clears at once, and only a new silence raises it again.
    """
    lighting, mast = running(30)
    report(mast, timedelta(seconds=1), on=True, brightness=76)
    mast.set_online(False, T0 + timedelta(minutes=1))
    lighting.command(mast, 100, 0, T0 + timedelta(minutes=2), True)  # a boost it never hears
    for minute in (3, 4, 5):
        if mast.needs_reask(T0 + timedelta(minutes=minute)):
            mast.reasked(T0 + timedelta(minutes=minute))
        mast.check_faults(T0 + timedelta(minutes=minute), True)
    assert mast.fault() == (FaultKind.NO_COMMUNICATION, T0 + timedelta(minutes=1))

    back = T0 + timedelta(minutes=6)
    assert mast.set_online(True, back)
    lighting.command(mast, 30, 0, back, True)  # told its level again on coming back
    assert mast.check_faults(back, True) == [
        FaultChange("M1", FaultKind.NO_COMMUNICATION, T0 + timedelta(minutes=1), False)
    ]
    assert mast.fault() is None
    # Silent after coming back: asked again, and a fault only after the grace from then.
    mast.reasked(back + CONFIRM_WITHIN)
    assert faults(mast, timedelta(minutes=6) + FAULT_GRACE - timedelta(seconds=1)) == {}
    assert faults(mast, timedelta(minutes=6) + FAULT_GRACE) == {FaultKind.NO_COMMUNICATION: back}


def test_a_mast_back_online_that_answers_stays_clear() -> None:
    lighting, mast = running(30)
    mast.set_online(False, T0 + timedelta(minutes=1))
    mast.reasked(T0 + timedelta(minutes=2))
    mast.check_faults(T0 + timedelta(minutes=2), True)
    mast.set_online(True, T0 + timedelta(minutes=3))
    lighting.command(mast, 30, 0, T0 + timedelta(minutes=3), True)
    report(mast, timedelta(minutes=3, seconds=1), on=True, brightness=76)
    assert faults(mast, timedelta(minutes=30)) == {}


def test_the_oldest_fault_is_the_one_shown() -> None:
    _, mast = running(30)
    report(mast, SETTLED, on=True, power_w=0.1)
    mast.set_online(False, T0 + timedelta(minutes=10))
    faults(mast, timedelta(minutes=10))
    assert mast.fault() == (FaultKind.LAMP_FAILURE, T0 + SETTLED)


# -- direction -------------------------------------------------------------------------------

SPACING_DEG = 0.0005  # about 55.6 m between masts along the chain


def placed(names: dict[str, tuple[float, float, tuple[str, ...]]]) -> Lighting:
    """Masts at (north, east) steps of SPACING_DEG with their neighbours."""
    return Lighting(
        {
            name: Mast(
                MastSpec(
                    name=name,
                    latitude=53.7 + north * SPACING_DEG,
                    longitude=10.0 + east * SPACING_DEG / 0.59,  # cos(53.7°): same metres
                    neighbours=neighbours,
                )
            )
            for name, (north, east, neighbours) in names.items()
        }
    )


def path(count: int = 8) -> Lighting:
    """M1 - M2 - ... - M8 in a straight line."""
    return placed({f"M{n}": (n, 0, (f"M{n - 1}",) if n > 1 else ()) for n in range(1, count + 1)})


def walk(lighting: Lighting, route: list[str], speed: float, start: datetime = T0) -> list[str]:
    """Detect the person at each mast of the route; return what the last detection lit."""
    at = start
    for here, there in itertools.pairwise(route):
        lighting.detect(here, at)
        at += timedelta(seconds=lighting.graph.length_m(here, there) / speed)
    lighting.detect(route[-1], at)
    return sorted(lighting.boost([route[-1]], at))


def test_distance_between_masts() -> None:
    assert path().graph.length_m("M1", "M2") == pytest.approx(55.6, abs=0.1)


def test_first_detection_lights_the_symmetric_corridor() -> None:
    lighting = path()
    assert lighting.detect("M3", T0) is None
    assert sorted(lighting.boost(["M3"], T0)) == ["M2", "M3", "M4"]
    assert sorted(lighting.boost(["M3"], T0, hops=2)) == ["M1", "M2", "M3", "M4", "M5"]


def test_a_walker_is_lit_ahead_not_behind() -> None:
    lighting = path()
    assert walk(lighting, ["M2", "M3"], 1.4) == ["M3", "M4"]
    heading = lighting.heading("M3", T0 + timedelta(seconds=40))
    assert heading is not None
    assert heading.came_from == "M2"
    assert heading.speed_mps == pytest.approx(1.4)


def test_a_cyclist_is_lit_further_ahead() -> None:
    assert walk(path(), ["M2", "M3"], 6.5) == ["M3", "M4", "M5"]


def test_lead_and_behind_are_the_profiles() -> None:
    lighting = path()
    profile = LightingProfile(lead_m=120, behind_m=60)
    for mast in lighting.masts.values():
        mast.spec = dataclasses.replace(mast.spec, profile=profile)
    assert walk(lighting, ["M4", "M5"], 1.4) == ["M4", "M5", "M6", "M7"]


def test_a_long_walk_keeps_its_heading_mast_after_mast() -> None:
    lit = walk(path(), ["M1", "M2", "M3", "M4", "M5", "M6"], 1.4)
    assert lit == ["M6", "M7"]


def test_the_other_way_round() -> None:
    assert walk(path(), ["M6", "M5"], 1.4) == ["M4", "M5"]


def test_the_heading_holds_for_repeated_boosts_of_the_same_motion() -> None:
    lighting = path()
    walk(lighting, ["M2", "M3"], 1.4)
    later = lighting.detections["M3"] + HEADING_KEPT
    assert sorted(lighting.boost(["M3"], later)) == ["M3", "M4"]
    assert sorted(lighting.boost(["M3"], later + timedelta(seconds=1))) == ["M2", "M3", "M4"]


@pytest.mark.parametrize(
    ("seconds", "known"),
    [
        pytest.param(55.6 / MIN_SPEED_MPS + 5, False, id="too-slow-another-person"),
        pytest.param(55.6 / MIN_SPEED_MPS - 5, True, id="slow-stroll"),
        pytest.param(55.6 / MAX_SPEED_MPS + 0.5, True, id="fast-bike"),
        pytest.param(55.6 / MAX_SPEED_MPS - 0.5, False, id="too-fast-two-people"),
    ],
)
def test_only_plausible_speeds_give_a_heading(seconds: float, known: bool) -> None:
    lighting = path()
    lighting.detect("M2", T0)
    assert (lighting.detect("M3", T0 + timedelta(seconds=seconds)) is not None) is known


def test_someone_elses_motion_minutes_ago_gives_no_heading() -> None:
    """Motion at M2 2.5 minutes ago was another person: a walker appearing at M3 is new."""
    lighting = path()
    lighting.detect("M2", T0)
    assert lighting.detect("M3", T0 + timedelta(seconds=150)) is None
    assert sorted(lighting.boost(["M3"], T0 + timedelta(seconds=150))) == ["M2", "M3", "M4"]


def test_walking_into_a_dead_end_lights_the_way_back() -> None:
    assert walk(path(), ["M6", "M7", "M8"], 1.4) == ["M7", "M8"]


def test_the_path_end_behind_stays_lit_for_the_next_person_entering() -> None:
    """A walker leaves the park's entrance M1; someone may enter there any moment."""
    lighting = path()
    assert walk(lighting, ["M1", "M2"], 1.4) == ["M1", "M2", "M3"]
    # Away from the entrance the mast behind is left to its own hold.
    assert walk(lighting, ["M2", "M3"], 1.4, T0 + timedelta(minutes=20)) == ["M3", "M4"]


def test_two_people_meeting_fall_back_to_the_corridor() -> None:
    """One walks M1 -> M3, the other M6 -> M4; the next detection has motion on both sides."""
    lighting = path()
    lighting.detect("M2", T0)
    lighting.detect("M5", T0)
    lighting.detect("M3", T0 + timedelta(seconds=40))
    assert lighting.detect("M4", T0 + timedelta(seconds=45)) is None
    assert sorted(lighting.boost(["M4"], T0 + timedelta(seconds=45))) == ["M3", "M4", "M5"]


def test_someone_walking_away_is_not_someone_coming() -> None:
    """A walker left M3 towards M4; a new person appearing at M3 has no known direction."""
    lighting = path()
    lighting.detect("M3", T0)
    lighting.detect("M4", T0 + timedelta(seconds=40))
    assert lighting.detect("M3", T0 + timedelta(seconds=60)) is None


def crossing() -> Lighting:
    """W2 - W1 - X - E1 - E2 west to east, S1 - X - N1 - N2 south to north."""
    return placed(
        {
            "W2": (0, -2, ()),
            "W1": (0, -1, ("W2",)),
            "X": (0, 0, ("W1",)),
            "E1": (0, 1, ("X",)),
            "E2": (0, 2, ("E1",)),
            "S1": (-1, 0, ("X",)),
            "N1": (1, 0, ("X",)),
            "N2": (2, 0, ("N1",)),
        }
    )


def test_at_a_crossing_every_way_ahead_is_lit() -> None:
    assert walk(crossing(), ["W1", "X"], 1.4) == ["E1", "N1", "S1", "X"]


def test_a_turn_at_the_crossing_follows_the_new_way() -> None:
    assert walk(crossing(), ["W2", "W1", "X", "N1"], 1.4) == ["N1", "N2"]


def test_two_people_reaching_a_crossing_from_two_sides_fall_back() -> None:
    lighting = crossing()
    lighting.detect("W1", T0)
    lighting.detect("S1", T0 + timedelta(seconds=5))
    assert lighting.detect("X", T0 + timedelta(seconds=42)) is None
    assert sorted(lighting.boost(["X"], T0 + timedelta(seconds=42))) == [
        "E1",
        "N1",
        "S1",
        "W1",
        "X",
    ]


def test_motion_at_an_unknown_mast_is_ignored() -> None:
    lighting = path()
    assert lighting.detect("Nowhere", T0) is None
    assert lighting.boost(["Nowhere"], T0) == []


# -- readings and persistence ----------------------------------------------------------------


def test_reading_is_folded_into_the_status() -> None:
    mast = Mast(spec("M1"))
    mast.apply(
        Reading(device="m1", on=True, brightness=127, occupancy=True, illuminance_lx=3.5), T0
    )
    later = T0 + timedelta(seconds=5)
    mast.apply(Reading(device="m1", occupancy=False, power_w=19.5), later)
    status = mast.status
    assert (status.on, status.brightness, status.motion) == (True, 127, False)
    assert (status.illuminance_lx, status.power_w, status.last_seen) == (3.5, 19.5, later)


FULL_STATUS = MastStatus(
    on=True,
    brightness=127.0,
    motion=False,
    illuminance_lx=3.5,
    power_w=19.5,
    energy_kwh=1.25,
    measured_energy=True,
    boost_until=T0 + timedelta(minutes=2),
    commanded_level=100.0,
    commanded_at=T0,
    last_seen=T0 + timedelta(seconds=3),
    level_since=T0,
    meter_kwh=812.5,
    override_level=0.0,
    override_until=T0 + timedelta(hours=1),
    reference_kwh=4.5,
    dark=True,
    level_changed_at=T0,
    unconfirmed_since=T0,
    reasked_at=T0 + timedelta(seconds=10),
    offline_since=T0 + timedelta(minutes=1),
    suspected={FaultKind.LAMP_FAILURE: T0, FaultKind.NO_COMMUNICATION: T0},
    faults={FaultKind.LAMP_FAILURE: T0 + timedelta(minutes=2)},
)


@pytest.mark.parametrize("status", [FULL_STATUS, MastStatus()], ids=["full", "empty"])
def test_status_round_trip(status: MastStatus) -> None:
    stored = json.loads(json.dumps(mast_status_to_dict(status)))
    assert mast_status_from_dict(stored) == status


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param({}, MastStatus(), id="empty"),
        pytest.param(
            {
                "brightness": "127",
                "power_w": True,
                "energy_kwh": None,
                "commanded_level": [1],
                "meter_kwh": {"kwh": 1},
            },
            MastStatus(),
            id="numbers-of-wrong-type",
        ),
        pytest.param(
            {"boost_until": "yesterday", "commanded_at": 1_700_000_000, "last_seen": ""},
            MastStatus(),
            id="times-unreadable",
        ),
        pytest.param(
            {"on": "true", "motion": 1, "measured_energy": "yes"},
            MastStatus(),
            id="flags-of-wrong-type",
        ),
        pytest.param(
            {"boost_until": "2026-11-22T17:02:00", "brightness": 127, "on": False},
            MastStatus(boost_until=T0 + timedelta(minutes=2), brightness=127.0, on=False),
            id="naive-time-is-utc-int-is-float",
        ),
        pytest.param(
            {"boost_until": "2026-11-22T18:02:00+01:00", "energy_kwh": 2},
            MastStatus(boost_until=T0 + timedelta(minutes=2), energy_kwh=2.0),
            id="offset-kept",
        ),
    ],
)
def test_status_from_garbage_falls_back_to_unknown(
    data: dict[str, Any], expected: MastStatus
) -> None:
    assert mast_status_from_dict(data) == expected


def test_a_detection_already_followed_on_gives_no_heading_again() -> None:
    """P1 walked M2 -> M3 and on; P2 appears at M3 from the other side: direction unknown."""
    lighting = path()
    lighting.detect("M2", T0)
    assert lighting.detect("M3", T0 + timedelta(seconds=40)) is not None
    lighting.detect("M4", T0 + timedelta(seconds=80))
    assert lighting.detect("M3", T0 + timedelta(seconds=120)) is None


@pytest.mark.parametrize(
    ("to", "expected"),
    [((53.701, 10.0), 0), ((53.7, 10.001), 90), ((53.699, 10.0), 180), ((53.7, 9.999), 270)],
)
def test_bearing_is_the_compass_direction_of_travel(
    to: tuple[float, float], expected: float
) -> None:
    assert bearing_deg(53.7, 10.0, *to) == pytest.approx(expected, abs=0.01)


def test_movement_names_where_from_which_way_and_how_fast() -> None:
    north = [
        Mast(MastSpec(f"N{n}", 53.7 + n * 0.0002, 10.0, neighbours=(f"N{n - 1}",) if n else ()))
        for n in range(3)
    ]
    lighting = Lighting({mast.spec.name: mast for mast in north})
    start = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
    lighting.detect("N0", start)
    assert lighting.movement("N0", start) is None  # a first detection: direction unknown
    lighting.detect("N1", start + timedelta(seconds=10))
    movement = lighting.movement("N1", start + timedelta(seconds=11))
    assert movement is not None
    assert movement.came_from == "N0"
    assert movement.bearing_deg == pytest.approx(0, abs=0.01)
    assert movement.speed_mps == pytest.approx(2.22, abs=0.01)  # 22.2 m in 10 s
    assert lighting.movement("N1", start + timedelta(seconds=10) + HEADING_KEPT * 2) is None


def test_a_mast_added_removed_or_renamed_changes_the_paths() -> None:
    """Masts come and go while the site runs: the graph follows, and no heading points nowhere."""
    lighting = path(4)
    walk(lighting, ["M2", "M3"], 1.4)
    assert lighting.heading("M3", T0 + timedelta(seconds=40)) is not None
    lighting.put(Mast(MastSpec("M5", 53.7 + 5 * SPACING_DEG, 10.0, neighbours=("M4",))))
    assert lighting.graph.neighbours("M4") == {"M3", "M5"}
    lighting.remove("M2")
    assert lighting.graph.neighbours("M3") == {"M4"}
    assert lighting.heading("M3", T0 + timedelta(seconds=40)) is None
    assert lighting.movement("M3", T0 + timedelta(seconds=40)) is None
    renamed = lighting.masts["M5"]
    renamed.spec = dataclasses.replace(renamed.spec, name="M5 Nord")
    lighting.put(renamed, "M5")
    assert "M5" not in lighting.masts
    assert lighting.graph.neighbours("M5 Nord") == {"M4"}
