"""The due count is a count, the tour is planned off the event loop, and one plan spans sites."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
import gc
import math
import threading
import time
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
)

from custom_components.city_ops import waste
from custom_components.city_ops.const import DOMAIN, TOPIC_DEFAULTS_DATA
from custom_components.city_ops.model.container import Container, ContainerSpec
from custom_components.city_ops.model.tour import CollectionTour, Stop
from custom_components.city_ops.waste import REPLAN_AFTER_S

from .conftest import SetupSite, container
from .test_containers import TTN_TOPIC, entity_id, ttn

MANY = 2_400
STALL_S = 0.1


@dataclass
class PlannerCalls:
    """Each call of the tour planner: the thread it ran on and how many stops it got."""

    calls: list[tuple[threading.Thread, int]] = field(default_factory=list)


@pytest.fixture
def planner(monkeypatch: pytest.MonkeyPatch) -> PlannerCalls:
    """Record every call of the real planner (it still plans)."""
    seen = PlannerCalls()
    real = waste.plan_tour

    def recorded(depot: Stop, stops: list[Stop]) -> CollectionTour:
        seen.calls.append((threading.current_thread(), len(stops)))
        return real(depot, stops)

    monkeypatch.setattr(waste, "plan_tour", recorded)
    return seen


@asynccontextmanager
async def loop_watch() -> AsyncIterator[list[float]]:
    """Longest time the event loop spent in its own thread between two turns of a 5 ms beat.

    CPU time of the loop's thread, not wall time: the machine is shared, and a beat that
    waits for a core says nothing about our code. Full garbage collections of the test
    process's heap (0.2 s here, whatever runs) are taken out and reported on their own.
    """
    longest = [0.0, 0.0]  # our work, garbage collection
    stop = asyncio.Event()
    loop_thread = threading.get_ident()
    collecting = [0.0, 0.0]  # since, total

    def collection(phase: str, info: dict[str, int]) -> None:
        if threading.get_ident() != loop_thread:
            return
        if phase == "start":
            collecting[0] = time.thread_time()
        else:
            spent = time.thread_time() - collecting[0]
            collecting[1] += spent
            longest[1] = max(longest[1], spent)

    async def beat() -> None:
        last, collected = time.thread_time(), collecting[1]
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.thread_time()
            longest[0] = max(longest[0], now - last - (collecting[1] - collected))
            last, collected = now, collecting[1]

    gc.callbacks.append(collection)
    task = asyncio.create_task(beat())
    try:
        yield longest
    finally:
        stop.set()
        await task
        gc.callbacks.remove(collection)


def add_due_containers(entry: MockConfigEntry, count: int) -> list[str]:
    """Put `count` containers on the running site, bound to TTN devices, 12 x 12 km around.

    Added to the site's model directly: as subentries they would bring 8 entities each and
    the test would measure entity creation, not the due count and the plan.
    """
    site = entry.runtime_data.site
    site.settings = replace(site.settings, depot_latitude=53.70, depot_longitude=10.00)
    devices = []
    side = math.ceil(math.sqrt(count))
    for index in range(count):
        device = f"bin-x{index:05d}"
        spec = ContainerSpec(
            name=f"Street bin {index:05d}",
            latitude=53.65 + 0.1 * (index // side) / side,
            longitude=9.95 + 0.17 * (index % side) / side,
        )
        site.add_container(f"x{index:05d}", Container(spec), "ttn", device)
        devices.append(device)
    return devices


async def feed(hass: HomeAssistant, devices: list[str], **decoded: Any) -> None:
    """One uplink per device, a few per loop turn.

    The test harness's injection costs about 2 ms per message (a mock call and a first
    match of each new topic): larger batches would be the harness's stall, not the site's.
    """
    for start in range(0, len(devices), 3):
        for device in devices[start : start + 3]:
            async_fire_mqtt_message(hass, f"v3/city-bins@ttn/devices/{device}/up", ttn(**decoded))
        await asyncio.sleep(0)
    await hass.async_block_till_done()


async def later(hass: HomeAssistant, seconds: float) -> None:
    """Let the site's timers (entity refresh, the route's next plan) run as if time passed."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=seconds))
    await hass.async_block_till_done()


async def plan(hass: HomeAssistant, entry_id: str | list[str]) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN,
        "plan_collection",
        {"config_entry_id": entry_id},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


async def route_items(hass: HomeAssistant, route: str) -> list[dict[str, Any]]:
    response = await hass.services.async_call(
        "todo", "get_items", {"entity_id": route}, blocking=True, return_response=True
    )
    return list(response[route]["items"])  # type: ignore[index,call-overload]


async def test_thousands_due_count_per_reading_and_plan_in_a_worker_thread(
    hass: HomeAssistant, setup_site: SetupSite, planner: PlannerCalls
) -> None:
    entry = await setup_site()
    collection = entry.runtime_data.waste
    devices = add_due_containers(entry, MANY)
    due = entity_id(hass, "Stadtpark", "containers_due")
    route = entity_id(hass, "Stadtpark", "collection_route")

    async with loop_watch() as longest:
        await feed(hass, devices, distance=160)  # 95 %: due at once
        assert planner.calls == []
        await later(hass, REPLAN_AFTER_S + 1)
        state = hass.states.get(due)
        assert state.state == str(MANY)
        assert len(state.attributes["containers"]) == 50
        assert state.attributes["more"] == MANY - 50
        # The route placed the newly due containers once, in a worker thread.
        assert [(thread is threading.main_thread(), stops) for thread, stops in planner.calls] == [
            (False, MANY)
        ]
        # More uplinks of due containers: counted, shown, never planned again.
        await feed(hass, devices[:500], distance=150)
        await later(hass, REPLAN_AFTER_S + 1)
        assert len(planner.calls) == 1
        items = await route_items(hass, route)
        assert len(items) == MANY
        response = await plan(hass, entry.entry_id)
        assert len(planner.calls) == 1  # the same stops: the route's plan is reused
        assert [stop["asset_id"] for stop in response["stops"]] == [item["uid"] for item in items]
        assert hass.states.get(route).attributes["length_m"] == response["length_m"]
        # Two requests while the stops changed: one computation, one answer for both.
        await feed(hass, devices[:1], distance=1250)  # emptied: no longer due
        first, second = await asyncio.gather(plan(hass, entry.entry_id), plan(hass, entry.entry_id))
        assert first == second
        assert len(first["stops"]) == MANY - 1
        assert [thread is threading.main_thread() for thread, _ in planner.calls] == [
            False,
            False,
        ]
    assert collection.plans_computed == 2
    assert longest[0] < STALL_S, (
        f"the event loop worked {longest[0]:.3f} s without a break"
        f" (longest garbage collection {longest[1]:.3f} s, not counted)"
    )


async def test_a_uplink_of_a_container_that_is_not_due_leaves_the_site_alone(
    hass: HomeAssistant, setup_site: SetupSite, planner: PlannerCalls
) -> None:
    await setup_site()
    due = entity_id(hass, "Stadtpark", "containers_due")
    route = entity_id(hass, "Stadtpark", "collection_route")
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=700))  # 50 %, no trend: not due
    await hass.async_block_till_done()
    written = {due: hass.states.get(due).last_updated, route: hass.states.get(route).last_updated}
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=690))
    await hass.async_block_till_done()
    assert {e: hass.states.get(e).last_updated for e in written} == written
    assert hass.states.get(due).state == "0"
    assert planner.calls == []


@pytest.fixture
def second_site() -> MockConfigEntry:
    """Another district with its own depot and two containers near it."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Altstadt",
        data={"name": "Altstadt", **TOPIC_DEFAULTS_DATA},
        options={
            "full_threshold": 80,
            "due_horizon_h": 24,
            "depot": {"latitude": 53.60, "longitude": 10.10},
        },
        subentries_data=[
            container("Market 1", "ttn", "market-1", latitude=53.61, longitude=10.09),
            container("Market 2", "ttn", "market-2", latitude=53.62, longitude=10.08),
        ],
    )


async def test_one_plan_across_two_sites_from_the_first_sites_depot(
    hass: HomeAssistant,
    setup_site: SetupSite,
    second_site: MockConfigEntry,
    planner: PlannerCalls,
) -> None:
    first = await setup_site()
    hass.config_entries.async_update_entry(
        first, options={**first.options, "depot": {"latitude": 53.70, "longitude": 10.00}}
    )
    await hass.async_block_till_done()
    first = hass.config_entries.async_get_entry(first.entry_id)
    second_site.add_to_hass(hass)
    assert await hass.config_entries.async_setup(second_site.entry_id)
    await hass.async_block_till_done()
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=160))
    for device in ("market-1", "market-2"):
        async_fire_mqtt_message(hass, f"v3/city-bins@ttn/devices/{device}/up", ttn(distance=200))
    await hass.async_block_till_done()

    both = await plan(hass, [first.entry_id, second_site.entry_id])
    assert both["depot"] == {"latitude": 53.70, "longitude": 10.00}
    assert both["sites"] == [
        {"config_entry_id": first.entry_id, "name": "Stadtpark"},
        {"config_entry_id": second_site.entry_id, "name": "Altstadt"},
    ]
    assert sorted((stop["site"], stop["name"]) for stop in both["stops"]) == [
        ("Altstadt", "Market 1"),
        ("Altstadt", "Market 2"),
        ("Stadtpark", "Bin 0042"),
    ]
    assert {stop["config_entry_id"] for stop in both["stops"]} == {
        first.entry_id,
        second_site.entry_id,
    }
    # The other way round starts from the other site's depot.
    other_way = await plan(hass, [second_site.entry_id, first.entry_id])
    assert other_way["depot"] == {"latitude": 53.60, "longitude": 10.10}
    alone = await plan(hass, second_site.entry_id)
    assert [stop["name"] for stop in alone["stops"]] in (
        ["Market 1", "Market 2"],
        ["Market 2", "Market 1"],
    )
    assert alone["length_m"] < both["length_m"]
    # A site named twice counts once; an unknown one is refused by name.
    twice = await plan(hass, [first.entry_id, second_site.entry_id, first.entry_id])
    assert twice["stops"] == both["stops"]
    with pytest.raises(ServiceValidationError) as refused:
        await plan(hass, [first.entry_id, "no-such-site"])
    assert refused.value.translation_key == "unknown_site"
    with pytest.raises(vol.Invalid):
        await plan(hass, [])
    assert all(thread is not threading.main_thread() for thread, _ in planner.calls)
