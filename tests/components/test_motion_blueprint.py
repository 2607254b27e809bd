"""The motion lighting blueprint, run by the real automation integration on six masts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
import json
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.blueprint.models import DomainBlueprints
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import (
    EVENT_CALL_SERVICE,
    EVENT_STATE_CHANGED,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.const import DOMAIN, TOPIC_DEFAULTS_DATA

from .conftest import SetupSite
from .test_masts import report

BLUEPRINTS = Path(__file__).resolve().parents[2] / "blueprints"
BLUEPRINT = "city_ops/motion_lighting.yaml"
MASTS = 6
# phcc's hass sits in San Diego (US/Pacific). 19:00 in January: the sun is down, and the
# site's night window (23:30-05:00, night level 10 %) is hours away.
EVENING = "2026-01-16T03:00:00+00:00"
NOON = "2026-01-15T20:00:00+00:00"
BOOST = {"state": "ON", "brightness": 254, "transition": 1.0}  # 100 %, transition up 1 s
BASE = {"state": "ON", "brightness": 76, "transition": 5.0}  # 30 %, transition down 5 s
BASE_FROM_OFF = {"state": "ON", "brightness": 76, "transition": 1.0}  # 30 %, going up

type SetupMotionLighting = Callable[..., Awaitable[None]]


def mast_subentry(number: int) -> ConfigSubentryData:
    """Mast <number> of a single path: mast-1 - mast-2 - ... - mast-6."""
    name = f"Mast {number}"
    neighbours = [f"Mast {other}" for other in (number - 1, number + 1) if 1 <= other <= MASTS]
    return ConfigSubentryData(
        data={
            "name": name,
            "latitude": 53.7 + number * 0.0003,
            "longitude": 10.0,
            "source_kind": "zigbee2mqtt",
            "device": f"mast-{number}",
            "path": "Uferweg",
            "rated_power_w": 40,
            "neighbours": neighbours,
            "motion_source": None,
            "lux_source": None,
            "base_level": None,
            "boost_level": None,
            "hold_s": None,
            "extra": {},
        },
        subentry_type="mast",
        title=name,
        unique_id=f"zigbee2mqtt:mast-{number}",
    )


@pytest.fixture
def site_entry() -> MockConfigEntry:
    """A site with six masts in a row along one path and the default lighting profile."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Stadtpark",
        data={"name": "Stadtpark", **TOPIC_DEFAULTS_DATA},
        subentries_data=[mast_subentry(number) for number in range(1, MASTS + 1)],
    )


@pytest.fixture(autouse=True)
def blueprint_folder() -> Iterator[None]:
    """Load blueprints from the repository's blueprints/ folder, as a user's config/ would."""
    with patch.object(
        DomainBlueprints,
        "blueprint_folder",
        new_callable=PropertyMock,
        side_effect=lambda: BLUEPRINTS / "automation",
    ):
        yield


def mast_entity(hass: HomeAssistant, number: int, domain: str, key: str | None = None) -> str:
    """An entity of a mast, found by its device and domain (and translation key)."""
    device = next(d for d in dr.async_get(hass).devices if d.name == f"Mast {number}")
    return next(
        entry.entity_id
        for entry in er.async_entries_for_device(er.async_get(hass), device.id)
        if entry.domain == domain and (key is None or entry.translation_key == key)
    )


@pytest.fixture
async def setup_motion_lighting(
    hass: HomeAssistant,
    setup_site: SetupSite,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
) -> SetupMotionLighting:
    """Set the site up at a given time, then one automation from the blueprint on all masts."""

    async def setup(at: str = EVENING, **inputs: Any) -> None:
        freezer.move_to(at)
        await setup_site()
        # A mast's motion sensor exists once its PIR reported; Zigbee2MQTT's first report
        # of a device carries every field it has.
        for number in range(1, MASTS + 1):
            await report(hass, f"mast-{number}", occupancy=False)
        sensors = [mast_entity(hass, n, "binary_sensor", "motion") for n in range(1, MASTS + 1)]
        assert await async_setup_component(
            hass,
            "automation",
            {
                "automation": {
                    "alias": "Motion lighting",
                    "use_blueprint": {
                        "path": BLUEPRINT,
                        "input": {"motion_sensors": sensors, **inputs},
                    },
                }
            },
        )
        await hass.async_block_till_done()
        automation = hass.states.get("automation.motion_lighting")
        assert automation is not None
        assert automation.state == STATE_ON
        # What the site sent at start (every mast to its profile level) is not under test.
        mqtt_mock.async_publish.reset_mock()

    return setup


def commands(mqtt_mock: MqttMockHAClient) -> list[tuple[str, dict[str, Any]]]:
    """The luminaire commands sent since the last reset: (friendly name, payload)."""
    sent = []
    for call in mqtt_mock.async_publish.call_args_list:
        topic, payload = call.args[0], call.args[1]
        if topic.startswith("zigbee2mqtt/") and topic.endswith("/set"):
            sent.append(
                (topic.removeprefix("zigbee2mqtt/").removesuffix("/set"), json.loads(payload))
            )
    return sent


def _in_wait_step(task: asyncio.Future[Any]) -> bool:
    """Whether a task is a script run parked in a wait step (here: waiting for motion to end)."""
    awaited: Any = task.get_coro() if isinstance(task, asyncio.Task) else None
    while awaited is not None:
        code = getattr(awaited, "cr_code", None)
        if code is not None and code.co_name == "_async_wait_with_optional_timeout":
            return True
        awaited = getattr(awaited, "cr_await", None)
    return False


def _parked() -> set[asyncio.Future[Any]]:
    """Runs parked in a wait step and every task that awaits them (the automation's trigger)."""
    parked: set[asyncio.Future[Any]] = set()
    todo: list[asyncio.Future[Any]] = [task for task in asyncio.all_tasks() if _in_wait_step(task)]
    while todo:
        task = todo.pop()
        if task in parked:
            continue
        parked.add(task)
        graph = asyncio.capture_call_graph(task)
        todo.extend(awaiting.future for awaiting in graph.awaited_by if graph is not None)
    return parked


async def settle(hass: HomeAssistant) -> None:
    """hass.async_block_till_done, except for runs that wait for a motion sensor to go off.

    Those runs last as long as the motion (the point of the blueprint); waiting for them
    would hang, and a real-time timeout cannot help on a frozen clock. A run whose wait just
    ended needs a few loop turns to move on, so only a quiet streak of turns counts as done.
    """
    quiet = 0
    while quiet < 5:
        await asyncio.sleep(0)
        parked = _parked()
        pending = [
            task
            for task in hass._tasks  # what async_block_till_done waits for
            if not task.done() and task is not asyncio.current_task() and task not in parked
        ]
        if pending:
            quiet = 0
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        else:
            quiet += 1


async def motion(hass: HomeAssistant, number: int, occupancy: bool, lux: float = 2) -> None:
    """Mast <number>'s PIR reports (Zigbee2MQTT device state), with its light sensor."""
    payload = {"occupancy": occupancy, "illuminance": lux, "linkquality": 90}
    async_fire_mqtt_message(hass, f"zigbee2mqtt/mast-{number}", json.dumps(payload))
    await settle(hass)


async def wait(hass: HomeAssistant, freezer: FrozenDateTimeFactory, **delta: float) -> None:
    """Let time pass on the frozen clock and run what became due."""
    freezer.tick(timedelta(**delta))
    async_fire_time_changed(hass)
    await settle(hass)


async def test_motion_boosts_the_corridor_then_the_masts_go_back_to_base(
    hass: HomeAssistant,
    setup_motion_lighting: SetupMotionLighting,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup_motion_lighting()  # blueprint defaults: corridor 1, hold 120 s
    sensor = mast_entity(hass, 3, "binary_sensor", "motion")
    assert hass.states.get(sensor).state == STATE_OFF  # the first report: no motion

    await motion(hass, 3, True)
    assert hass.states.get(sensor).state == STATE_ON
    assert sorted(commands(mqtt_mock)) == [("mast-2", BOOST), ("mast-3", BOOST), ("mast-4", BOOST)]
    light = hass.states.get(mast_entity(hass, 3, "light"))
    assert light.attributes["commanded_level"] == 100
    assert light.attributes["boost_until"] is not None

    await wait(hass, freezer, seconds=20)
    await motion(hass, 3, False)  # the walker has left; the hold counts from here
    await wait(hass, freezer, seconds=119)
    assert len(commands(mqtt_mock)) == 3
    await wait(hass, freezer, seconds=2)
    assert sorted(commands(mqtt_mock)[3:]) == [("mast-2", BASE), ("mast-3", BASE), ("mast-4", BASE)]
    assert hass.states.get(mast_entity(hass, 3, "light")).attributes["commanded_level"] == 30


async def test_motion_that_goes_on_keeps_the_boost_without_new_commands(
    hass: HomeAssistant,
    setup_motion_lighting: SetupMotionLighting,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup_motion_lighting()
    await motion(hass, 3, True)
    assert len(commands(mqtt_mock)) == 3
    # A PIR repeats "occupied" while someone moves, and a walker lingering on a bench
    # keeps it on for longer than the hold; then the walker goes and comes back.
    for _ in range(10):
        await wait(hass, freezer, seconds=30)
        await motion(hass, 3, True)
    await motion(hass, 3, False)
    await wait(hass, freezer, seconds=60)
    await motion(hass, 3, True)
    await wait(hass, freezer, seconds=10)
    await motion(hass, 3, False)
    await wait(hass, freezer, seconds=119)
    assert len(commands(mqtt_mock)) == 3, commands(mqtt_mock)
    await wait(hass, freezer, seconds=2)
    assert sorted(commands(mqtt_mock)[3:]) == [("mast-2", BASE), ("mast-3", BASE), ("mast-4", BASE)]


async def test_sensor_on_for_longer_than_the_hold_keeps_the_boost(
    hass: HomeAssistant,
    setup_motion_lighting: SetupMotionLighting,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
) -> None:
    """No message at all for ten minutes while occupied: the run itself renews the hold."""
    await setup_motion_lighting(hold=60)
    await motion(hass, 3, True)
    for _ in range(20):
        await wait(hass, freezer, seconds=31)
    assert len(commands(mqtt_mock)) == 3
    await motion(hass, 3, False)
    await wait(hass, freezer, seconds=61)
    assert sorted(commands(mqtt_mock)[3:]) == [("mast-2", BASE), ("mast-3", BASE), ("mast-4", BASE)]


async def test_stuck_sensor_gives_up_after_the_longest_motion(
    hass: HomeAssistant,
    setup_motion_lighting: SetupMotionLighting,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A PIR that lost its radio while it saw someone says "occupied" forever."""
    await setup_motion_lighting(hold=60, longest_motion=5)
    await motion(hass, 3, True)
    for _ in range(9):  # 4.5 minutes: still a walker on a bench
        await wait(hass, freezer, seconds=30)
    assert len(commands(mqtt_mock)) == 3
    for _ in range(4):  # past 5 minutes of motion, then the hold of the last boost
        await wait(hass, freezer, seconds=30)
    assert sorted(commands(mqtt_mock)[3:]) == [("mast-2", BASE), ("mast-3", BASE), ("mast-4", BASE)]
    # A new motion of the same sensor boosts again.
    await motion(hass, 3, False)
    await motion(hass, 3, True)
    assert sorted(commands(mqtt_mock)[6:]) == [
        ("mast-2", BOOST),
        ("mast-3", BOOST),
        ("mast-4", BOOST),
    ]


async def test_crowd_walking_down_the_path_sends_each_luminaire_one_boost(
    hass: HomeAssistant,
    setup_motion_lighting: SetupMotionLighting,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup_motion_lighting()
    # Twenty people, a few metres apart: masts 1-6 see motion on and off, over and over.
    for step in range(40):
        number = 1 + step // 8
        await motion(hass, number, True)
        await motion(hass, max(1, number - 1), step % 2 == 0)
        await wait(hass, freezer, seconds=3)
    for number in range(1, MASTS + 1):
        await motion(hass, number, False)
    boosts = commands(mqtt_mock)
    assert sorted(boosts) == [(f"mast-{n}", BOOST) for n in range(1, MASTS + 1)]
    await wait(hass, freezer, seconds=121)
    assert sorted(commands(mqtt_mock)[len(boosts) :]) == [
        (f"mast-{n}", BASE) for n in range(1, MASTS + 1)
    ]


async def test_corridor_and_hold_come_from_the_inputs(
    hass: HomeAssistant,
    setup_motion_lighting: SetupMotionLighting,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup_motion_lighting(radius=2, hold=30)
    await motion(hass, 3, True)
    await motion(hass, 3, False)
    assert sorted(commands(mqtt_mock)) == [(f"mast-{n}", BOOST) for n in range(1, 6)]
    await wait(hass, freezer, seconds=29)
    assert len(commands(mqtt_mock)) == 5
    await wait(hass, freezer, seconds=2)
    assert sorted(commands(mqtt_mock)[5:]) == [(f"mast-{n}", BASE) for n in range(1, 6)]


async def test_corridor_zero_boosts_only_the_mast_itself(
    hass: HomeAssistant, setup_motion_lighting: SetupMotionLighting, mqtt_mock: MqttMockHAClient
) -> None:
    await setup_motion_lighting(radius=0)
    await motion(hass, 6, True)
    assert commands(mqtt_mock) == [("mast-6", BOOST)]


async def test_nothing_happens_in_daylight(
    hass: HomeAssistant,
    setup_motion_lighting: SetupMotionLighting,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup_motion_lighting(at=NOON)
    services = async_capture_events(hass, EVENT_CALL_SERVICE)
    await motion(hass, 3, True, lux=800)
    await wait(hass, freezer, seconds=30)
    await motion(hass, 3, False, lux=800)
    await wait(hass, freezer, seconds=200)
    assert commands(mqtt_mock) == []
    light = hass.states.get(mast_entity(hass, 3, "light"))
    assert light.attributes["dark"] is False
    assert light.attributes["boost_until"] is None  # nothing boosted, not even for later
    # The action judged the darkness itself: one call, asked to boost only where it is dark.
    assert [
        (event.data["service"], event.data["service_data"]["when_dark"]) for event in services
    ] == [("boost", True)]


async def test_mast_dark_by_its_light_sensor_in_daytime_is_boosted(
    hass: HomeAssistant,
    setup_motion_lighting: SetupMotionLighting,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
) -> None:
    """At noon under thick trees: every mast's light sensor reads 2 lx, so all count as dark."""
    await setup_motion_lighting(at=NOON)
    for number in range(1, MASTS + 1):
        await motion(hass, number, False, lux=2)
    # The minute tick brings the masts that became dark to base (and refreshes their lights).
    await wait(hass, freezer, seconds=61)
    assert sorted(commands(mqtt_mock)) == [
        (f"mast-{n}", BASE_FROM_OFF) for n in range(1, MASTS + 1)
    ]
    mqtt_mock.async_publish.reset_mock()
    await motion(hass, 3, True, lux=2)
    assert sorted(commands(mqtt_mock)) == [("mast-2", BOOST), ("mast-3", BOOST), ("mast-4", BOOST)]


async def test_dark_attribute_follows_the_light_sensor_at_once(
    hass: HomeAssistant, setup_motion_lighting: SetupMotionLighting, mqtt_mock: MqttMockHAClient
) -> None:
    await setup_motion_lighting(at=NOON)
    for number in range(1, MASTS + 1):
        await motion(hass, number, False, lux=2)
    assert hass.states.get(mast_entity(hass, 3, "light")).attributes["dark"] is True
    mqtt_mock.async_publish.reset_mock()
    await motion(hass, 3, True, lux=2)
    assert sorted(commands(mqtt_mock)) == [("mast-2", BOOST), ("mast-3", BOOST), ("mast-4", BOOST)]


async def test_motion_known_before_a_reload_does_not_boost_and_keeps_its_hold(
    hass: HomeAssistant,
    setup_motion_lighting: SetupMotionLighting,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
    site_entry: MockConfigEntry,
) -> None:
    """After a reload the stored "occupied" comes back (unavailable -> on): not new motion.

    The site held the boost while the motion went on; it keeps holding it after the reload.
    """
    await setup_motion_lighting()
    # With the sun down the condition holds even while the luminaire is still unavailable.
    assert await async_setup_component(hass, "sun", {})
    assert hass.states.get("sun.sun").state == "below_horizon"
    boosts = async_capture_events(hass, EVENT_CALL_SERVICE)
    await motion(hass, 3, True)
    assert [event.data["service"] for event in boosts] == ["boost"]
    await wait(hass, freezer, seconds=10)
    sensor = mast_entity(hass, 3, "binary_sensor", "motion")
    changes = async_capture_events(hass, EVENT_STATE_CHANGED)
    assert await hass.config_entries.async_reload(site_entry.entry_id)
    await settle(hass)
    seen = [
        (event.data["old_state"].state, event.data["new_state"].state)
        for event in changes
        if event.data["entity_id"] == sensor and event.data["new_state"] is not None
    ]
    assert seen == [(STATE_ON, STATE_UNAVAILABLE), (STATE_UNAVAILABLE, STATE_ON)]
    # The restored "on" starts nothing new.
    assert [event.data["service"] for event in boosts] == ["boost"]
    # The walker is still there five minutes on (no new message: the PIR stays occupied):
    # the held boost outlasts the 120 s hold, and counts its hold from the end of the motion.
    mqtt_mock.async_publish.reset_mock()
    for _ in range(10):
        await wait(hass, freezer, seconds=30)
    assert commands(mqtt_mock) == []
    await motion(hass, 3, False)
    await wait(hass, freezer, seconds=119)
    assert commands(mqtt_mock) == []
    await wait(hass, freezer, seconds=2)
    assert sorted(commands(mqtt_mock)) == [("mast-2", BASE), ("mast-3", BASE), ("mast-4", BASE)]
