"""Masts reached through ZHA: a PIR report on the fake radio, the motion blueprint, the boost
back out as LevelControl frames to the mast and its neighbours, and the way back to base."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
import math
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.blueprint.models import DomainBlueprints
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.typing import MqttMockHAClient
from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import Basic, LevelControl, OnOff
from zigpy.zcl.clusters.homeautomation import ElectricalMeasurement
from zigpy.zcl.clusters.measurement import IlluminanceMeasurement, OccupancySensing

from custom_components.city_ops.const import DOMAIN, TOPIC_DEFAULTS_DATA

from .conftest import mast

# The fixtures (setup_zha, make_zigpy_device, ...) until tests/components/conftest.py imports them.
from .zha_fixtures import *  # noqa: F403
from .zha_fixtures import MakeZigpyDevice, ZhaNetwork

BLUEPRINTS = Path(__file__).resolve().parents[2] / "blueprints"
# phcc's hass sits in San Diego: 19:00 in January, the sun is down, the night window far off.
EVENING = "2026-01-16T03:00:00+00:00"
# Four masts on one path, M1 - M2 - M3 - M4, each a luminaire with its PIR and light sensor.
IEEES = {number: f"00:0d:6f:00:0b:7a:00:{number:02x}" for number in range(1, 5)}
LUMINAIRE = {
    1: {"in": [Basic, OnOff, LevelControl, ElectricalMeasurement], "device_type": 0x0101},
    2: {"in": [OccupancySensing, IlluminanceMeasurement], "device_type": 0x0107},
}
# The default profile: boost 100 % with 1 s up, base 30 % with 5 s down.
BOOST = (254, 10)
BASE = (76, 50)


@pytest.fixture
def site_entry() -> MockConfigEntry:
    """The site with its masts bound to ZHA devices by IEEE."""
    masts = [
        mast(
            f"M{number}",
            IEEES[number],
            *[f"M{other}" for other in (number - 1, number + 1) if other in IEEES],
            source_kind="zha",
        )
        for number in IEEES
    ]
    return MockConfigEntry(
        domain=DOMAIN,
        title="Stadtpark",
        data={"name": "Stadtpark", **TOPIC_DEFAULTS_DATA},
        subentries_data=masts,
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


def mast_entity(hass: HomeAssistant, name: str, domain: str, key: str | None = None) -> str:
    device = next(d for d in dr.async_get(hass).devices if d.name == name)
    return next(
        entry.entity_id
        for entry in er.async_entries_for_device(er.async_get(hass), device.id)
        if entry.platform == DOMAIN
        and entry.domain == domain
        and (key is None or entry.translation_key == key)
    )


def _waits_for_motion_to_end(task: asyncio.Future[Any]) -> bool:
    """Whether a task is an automation run parked in a wait step (waiting for motion to end)."""
    awaited: Any = task.get_coro() if isinstance(task, asyncio.Task) else None
    while awaited is not None:
        code = getattr(awaited, "cr_code", None)
        if code is not None and code.co_name == "_async_wait_with_optional_timeout":
            return True
        awaited = getattr(awaited, "cr_await", None)
    return False


def _parked() -> set[asyncio.Future[Any]]:
    """Parked runs and every task awaiting one (the trigger awaits its run through a shield)."""
    parked: set[asyncio.Future[Any]] = set()
    graphs = [
        asyncio.capture_call_graph(task)
        for task in asyncio.all_tasks()
        if _waits_for_motion_to_end(task)
    ]
    while graphs:
        graph = graphs.pop()
        if graph is None or graph.future in parked:
            continue
        parked.add(graph.future)
        graphs.extend(graph.awaited_by)
    return parked


async def settle(hass: HomeAssistant) -> None:
    """async_block_till_done, except for blueprint runs that last as long as the motion."""
    while True:
        # A few loop turns first: a run whose wait just ended must get to run on (and leave
        # its wait step) before it can be told apart from one still waiting.
        for _ in range(5):
            await asyncio.sleep(0)
        parked = _parked()
        pending = [
            task
            for task in hass._tasks
            if not task.done() and task is not asyncio.current_task() and task not in parked
        ]
        if not pending:
            return
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)


type Park = Callable[[], Awaitable[dict[int, Any]]]


@pytest.fixture
async def park(
    hass: HomeAssistant,
    setup_zha: ZhaNetwork,
    make_zigpy_device: MakeZigpyDevice,
    mqtt_mock: MqttMockHAClient,
    site_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> dict[int, Any]:
    """ZHA with the four luminaires joined, the site, and the blueprint on the masts' PIRs."""
    freezer.move_to(EVENING)
    devices = {
        number: await make_zigpy_device(ieee, LUMINAIRE, model="Mast luminaire")
        for number, ieee in IEEES.items()
    }
    site_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(site_entry.entry_id)
    await hass.async_block_till_done()
    # A mast's motion sensor exists once its PIR reported (a joined PIR reports at once).
    for device in devices.values():
        await pir(hass, setup_zha, device, False)
    sensors = [mast_entity(hass, f"M{n}", "binary_sensor", "motion") for n in IEEES]
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "alias": "Motion lighting",
                "use_blueprint": {
                    "path": "city_ops/motion_lighting.yaml",
                    "input": {"motion_sensors": sensors},
                },
            }
        },
    )
    await hass.async_block_till_done()
    # What the site sent at start (every mast to its profile level) is not under test.
    setup_zha.app.sent.clear()
    return devices


def levels(network: ZhaNetwork) -> list[tuple[str, tuple[int, int]]]:
    """(mast, (level, transition_time)) of every LevelControl command so far, as sent."""
    numbers = {ieee: f"M{number}" for number, ieee in IEEES.items()}
    return [
        (numbers[c.ieee], (c.args["level"], c.args["transition_time"]))
        for c in network.app.commands(LevelControl.cluster_id)
        if c.command == "move_to_level_with_on_off"
    ]


async def pir(
    hass: HomeAssistant, network: ZhaNetwork, device: Any, occupied: bool, lux: float = 2
) -> None:
    """The mast's PIR and light sensor report, as ZCL frames through the fake radio."""
    network.app.report(
        device,
        2,
        IlluminanceMeasurement.cluster_id,
        {"measured_value": round(10000 * math.log10(lux) + 1)},
    )
    network.app.report(device, 2, OccupancySensing.cluster_id, {"occupancy": int(occupied)})
    await settle(hass)


async def wait(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await settle(hass)


async def test_motion_on_a_zha_mast_boosts_its_corridor_over_zigbee(
    hass: HomeAssistant,
    setup_zha: ZhaNetwork,
    park: dict[int, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    await pir(hass, setup_zha, park[2], True)
    assert hass.states.get(mast_entity(hass, "M2", "binary_sensor", "motion")).state == STATE_ON
    assert sorted(levels(setup_zha)) == [("M1", BOOST), ("M2", BOOST), ("M3", BOOST)]

    await wait(hass, freezer, 20)
    await pir(hass, setup_zha, park[2], False)  # the walker has left; the hold counts from here
    await wait(hass, freezer, 119)
    assert len(levels(setup_zha)) == 3, levels(setup_zha)
    await wait(hass, freezer, 2)
    assert sorted(levels(setup_zha)[3:]) == [("M1", BASE), ("M2", BASE), ("M3", BASE)]
    assert hass.states.get(mast_entity(hass, "M2", "light")).attributes["commanded_level"] == 30
    assert hass.config_entries.async_entries(DOMAIN)[0].runtime_data.lighting.command_errors == 0
    # The luminaires confirmed each level with a report (back in through ZhaDevices): no fault.
    await wait(hass, freezer, 180)
    for name in ("M1", "M2", "M3"):
        assert (
            hass.states.get(mast_entity(hass, name, "binary_sensor", "lamp_fault")).state == "off"
        )


async def test_a_luminaire_refusing_the_boost_is_counted_not_fatal(
    hass: HomeAssistant,
    setup_zha: ZhaNetwork,
    park: dict[int, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (A radio that cannot deliver makes zigpy retry after real sleeps, which a frozen clock
    # never ends; delivery failures are covered in test_zha_source.py.)
    setup_zha.app.command_status = foundation.Status.FAILURE
    await pir(hass, setup_zha, park[3], True)
    assert sorted(levels(setup_zha)) == [("M2", BOOST), ("M3", BOOST), ("M4", BOOST)]
    assert "rejected" in caplog.text
    runtime = hass.config_entries.async_entries(DOMAIN)[0].runtime_data
    assert runtime.lighting.command_errors == 3
