"""The site's waste containers at run time: readings in, events, due containers and the plan out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
import itertools
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.debounce import Debouncer
from homeassistant.util import dt as dt_util

from .const import EVENT_CONTAINER_EMPTIED, EVENT_CONTAINER_FIRE, LOGGER
from .model.assets import Asset
from .model.container import (
    OFFLINE_AFTER_INTERVALS,
    Container,
    ContainerSpec,
    ContainerUpdate,
    WasteKind,
)
from .model.route import CrewRoute, StopDone
from .model.tour import CollectionTour, Stop, plan_tour, tour_length_m
from .sources.reading import Reading

if TYPE_CHECKING:
    from .model.site import Site
    from .runtime import CityOpsConfigEntry

COMPLETED_KEPT = timedelta(hours=24)


def tour_start() -> datetime:
    """A crew's tour is a working day: it begins at local midnight."""
    return dt_util.start_of_local_day()


def container_spec(asset: Asset) -> ContainerSpec:
    """Build the model's spec from a stored asset."""
    params = asset.params
    return ContainerSpec(
        name=asset.name,
        latitude=asset.latitude,
        longitude=asset.longitude,
        waste_kind=WasteKind(params.get("waste_kind", WasteKind.RESIDUAL)),
        volume_l=int(params.get("volume_l", 1100)),
        depth_mm=int(params.get("depth_mm", 1200)),
        sensor_offset_mm=int(params.get("sensor_offset_mm", 100)),
        report_interval_s=int(params.get("report_interval_s", 3600)),
    )


PLANS_KEPT = 4  # a site's own plan and a few plans across sites
# Newly due containers join the route's planned order this long after the first of them
# (a morning's burst is one plan, not hundreds); the route lists them last meanwhile. A plan
# costs up to a second of a worker thread on a large site.
REPLAN_AFTER_S = 30.0

type PlanKey = tuple[Stop, tuple[Stop, ...]]


# What a container's entities show, by entity key, and which reading fields move each. A new
# container entity needs its key here, or only full refreshes (back online, the crew) reach it.
FILL_SHOWN = ("fill_level", "fill_state", "predicted_full")
HEAT_SHOWN = ("temperature", "fire_alarm")
SHOWN_BY_READINGS = frozenset((*FILL_SHOWN, *HEAT_SHOWN, "last_emptied", "battery", "tilt"))


def _shown_by(fill: bool, emptied: bool, battery: bool, heat: bool, tilt: bool) -> frozenset[str]:
    keys: list[str] = []
    if fill:
        keys += FILL_SHOWN
    if emptied:
        keys.append("last_emptied")
    if battery:
        keys.append("battery")
    if heat:
        keys += HEAT_SHOWN
    if tilt:
        keys.append("tilt")
    return frozenset(keys)


# Every combination, built once: a reading looks its set up instead of building a list, and
# the entities and the budget test membership in a set.
_SHOWN_BY: dict[tuple[bool, ...], frozenset[str]] = {
    flags: _shown_by(*flags) for flags in itertools.product((False, True), repeat=5)
}


def changed_by(reading: Reading, update: ContainerUpdate) -> frozenset[str]:
    """The entity keys of a container a reading may have changed; the others need no look."""
    return _SHOWN_BY[
        (
            reading.distance_mm is not None or reading.fill_percent is not None,
            update.emptied is not None,
            reading.battery_percent is not None or reading.battery_volt is not None,
            reading.temperature_c is not None,
            reading.tilted is not None,
        )
    ]


class WasteCollection:
    """Emptyings, fire alarms, silent sensors, the due containers, the crew's route, the plan.

    Which containers are due is kept per reading (a set, so counting is free); the tour is
    planned only when asked (`plan_collection`, and the route once containers it does not
    list became due), in a worker thread, and reused while the stops and the depot stay.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        entry: CityOpsConfigEntry,
        site: Site,
        *,
        notify: Callable[[str, Collection[str] | None], None],
        site_changed: Callable[[], None],
        save: Callable[[], None],
        save_readings: Callable[[bool], None],
    ) -> None:
        """Work on the site's containers.

        `notify(asset_id, changed)` refreshes one container's entities (those that show what
        `changed` names, or all for None), `site_changed()` the site's (debounced), `save()`
        schedules a save of the site's store (route, emptyings), `save_readings(news)` one of
        the containers' store, soon when news is true.
        """
        self.hass = hass
        self.entry = entry
        self.site = site
        self.containers = site.containers
        self._notify = notify
        self._site_changed = site_changed
        self._save = save
        self._save_readings = save_readings
        self.completed: dict[str, datetime] = {}
        self.route = CrewRoute()
        self.due: set[str] = set()  # due, and not emptied or skipped by the crew on this tour
        self._handled: set[str] = set()
        self._order: list[str] = []  # the latest plan of this site alone
        self._planned: set[str] = set()
        self._shown: tuple[int, list[str], float] | None = None
        self._due_version = 0
        # Bumped whenever what the site's entities show may have changed (they cache on it).
        self.version = 0
        self._tour_start = tour_start()
        self._plans: dict[PlanKey, CollectionTour] = {}
        self._planning: dict[PlanKey, asyncio.Future[CollectionTour]] = {}
        self.plans_computed = 0
        self._replan = Debouncer(
            hass,
            LOGGER,
            cooldown=REPLAN_AFTER_S,
            immediate=False,
            function=self._async_replan,
        )

    # -- state --------------------------------------------------------------------------------

    def restore(self, stored: Mapping[str, Any]) -> None:
        """Bring back container states, the last day's emptyings and the crew's route."""
        for asset_id, data in (stored.get("containers") or {}).items():
            container = self.containers.get(asset_id)
            if container is None or not isinstance(data, Mapping):
                continue
            try:
                container.status = Container.status_from_dict(dict(data))
            except (TypeError, ValueError) as err:
                LOGGER.warning(
                    "Ignoring unreadable stored state of %s: %s", container.spec.name, err
                )
        for asset_id, at in (stored.get("completed") or {}).items():
            when = dt_util.parse_datetime(at) if isinstance(at, str) else None
            if when is not None and asset_id in self.containers:
                self.completed[asset_id] = when
        route = stored.get("route")
        if isinstance(route, Mapping):
            self.route = CrewRoute.from_dict(route)

    def readings_to_store(self) -> dict[str, Any]:
        """What the containers reported (their own store: it changes with every reading)."""
        # Called in a worker thread (thousands of histories would stall the event loop): the
        # containers are listed in one C call, as an asset may be added meanwhile.
        return {
            "containers": {
                asset_id: container.to_dict()
                for asset_id, container in list(self.containers.items())
            }
        }

    def to_store(self) -> dict[str, Any]:
        """The crew's route and the day's emptyings (in the site's store)."""
        return {
            "completed": {asset_id: at.isoformat() for asset_id, at in self.completed.items()},
            "route": self.route.to_dict(),
        }

    def stop(self) -> None:
        """Plan no more."""
        self._replan.async_shutdown()

    # -- what the containers say --------------------------------------------------------------

    @callback
    def apply(self, asset_id: str, reading: Reading, now: datetime) -> None:
        """Fold a report into a container; announce emptyings and fire alarms."""
        container = self.containers[asset_id]
        shown_on_route = asset_id in self.due
        alarms = (container.status.fire_alarm, container.status.tilted)
        update = container.apply(reading, now, self.site.settings.full_threshold)
        emptied = update.emptied is not None
        # An emptying or an alarm is news; a plain reading comes again with the next uplink.
        news = emptied or update.fire_started or update.fire_ended
        if news or update.back_online:
            self._announce(asset_id, container, update)
        self._notify(asset_id, None if update.back_online else changed_by(reading, update))
        if emptied:
            self._save()  # the day's emptyings
        self._save_readings(news)
        # The site's entities show the due containers (count, names, route lines), the
        # emptyings and the alarms: a reading of any other container leaves them as they are.
        if (
            self._update_due(asset_id, now)
            or shown_on_route
            or emptied
            or alarms != (container.status.fire_alarm, container.status.tilted)
        ):
            self._changed()

    def _announce(self, asset_id: str, container: Container, update: ContainerUpdate) -> None:
        name = container.spec.name
        if update.back_online:
            LOGGER.info("%s reports again", name)
        if update.emptied is not None:
            emptied = update.emptied
            self.completed[asset_id] = emptied.at
            self.hass.bus.async_fire(
                EVENT_CONTAINER_EMPTIED,
                {
                    "config_entry_id": self.entry.entry_id,
                    "asset_id": asset_id,
                    "name": name,
                    "before": emptied.before,
                    "after": emptied.after,
                    "at": emptied.at.isoformat(),
                },
            )
        if update.fire_started or update.fire_ended:
            if update.fire_started:
                LOGGER.warning("Fire alarm at %s: %s °C", name, container.status.temperature)
            self.hass.bus.async_fire(
                EVENT_CONTAINER_FIRE,
                {
                    "config_entry_id": self.entry.entry_id,
                    "asset_id": asset_id,
                    "name": name,
                    "alarm": container.status.fire_alarm,
                    "temperature": container.status.temperature,
                },
            )

    @callback
    def tick(self, now: datetime) -> bool:
        """Minute tick: silent sensors, ageing predictions, a new tour; True if the site changed."""
        changed = False
        for asset_id in self.site.went_offline(now):
            container = self.containers[asset_id]
            LOGGER.warning(
                "%s has not reported for %s intervals of %s s; marking it unavailable",
                container.spec.name,
                OFFLINE_AFTER_INTERVALS,
                container.spec.report_interval_s,
            )
            self._notify(asset_id, None)
            self._save_readings(False)
            changed = changed or asset_id in self.due
        cutoff = now - COMPLETED_KEPT
        expired = [asset_id for asset_id, at in self.completed.items() if at < cutoff]
        for asset_id in expired:
            del self.completed[asset_id]
        start = tour_start()
        if start != self._tour_start:
            self._tour_start = start  # a new tour: yesterday's done stops leave the route
            changed = True
        self.route.forget_before(start)
        self._handled = set(self.route.done)
        # Predictions move with time even without messages; O(containers), a few ms at 5,000.
        if self._refresh_due(now) or changed or expired:
            self.version += 1
            return True
        return False

    def _changed(self) -> None:
        self.version += 1
        self._site_changed()

    def _refresh_due(self, now: datetime) -> bool:
        settings = self.site.settings
        handled = self._handled
        due = {
            asset_id
            for asset_id, container in self.containers.items()
            if asset_id not in handled
            and container.is_due(now, settings.full_threshold, settings.due_horizon)
        }
        if due == self.due:
            return False
        self.due = due
        self._due_changed(due - self._planned)
        return True

    def _update_due(self, asset_id: str, now: datetime) -> bool:
        settings = self.site.settings
        due = asset_id not in self._handled and self.containers[asset_id].is_due(
            now, settings.full_threshold, settings.due_horizon
        )
        if due == (asset_id in self.due):
            return False
        if due:
            self.due.add(asset_id)
        else:
            self.due.discard(asset_id)
        self._due_changed({asset_id} - self._planned if due else set())
        return True

    def _due_changed(self, unplanned: set[str]) -> None:
        self._due_version += 1
        if unplanned:
            self._replan.async_schedule_call()

    @callback
    def settings_changed(self) -> None:
        """The full threshold, the horizon or the depot changed: what is due, and the route."""
        self._refresh_due(dt_util.utcnow())
        self._due_changed(set())  # the route's length starts at the depot
        for asset_id in self.containers:
            self._notify(asset_id, None)  # the fill state is judged against the threshold
        self._changed()

    @callback
    def container_changed(self, asset_id: str) -> None:
        """A container was added, changed (moved, renamed) or removed without a site reload."""
        if asset_id in self.containers:
            self._update_due(asset_id, dt_util.utcnow())
        else:
            self.completed.pop(asset_id, None)
            self.route.done.pop(asset_id, None)
            self._handled.discard(asset_id)
            self.due.discard(asset_id)
        # The route shows names and its length from the containers' places.
        self._due_changed(set())
        self._changed()

    # -- the crew -----------------------------------------------------------------------------

    @callback
    def empty_by_hand(self, asset_id: str, by: str) -> StopDone:
        """The crew emptied a container and ticked its stop: a collection like a detected one."""
        now = dt_util.utcnow()
        container = self.containers[asset_id]
        before = container.status.fill_level
        container.emptied_by_hand(now)
        done = self.route.empty(asset_id, now, by)
        self.hass.bus.async_fire(
            EVENT_CONTAINER_EMPTIED,
            {
                "config_entry_id": self.entry.entry_id,
                "asset_id": asset_id,
                "name": container.spec.name,
                "before": before,
                "after": None,  # the sensor tells on its next report
                "at": now.isoformat(),
                "by_hand": True,
            },
        )
        self._route_changed(asset_id)
        return done

    @callback
    def skip_stop(self, asset_id: str, by: str, reason: str) -> StopDone:
        """The crew could not empty a container; it comes back on the next tour."""
        done = self.route.skip(asset_id, dt_util.utcnow(), by, reason)
        self._route_changed(asset_id)
        return done

    def _route_changed(self, asset_id: str) -> None:
        self._handled.add(asset_id)
        if asset_id in self.due:
            self.due.discard(asset_id)
            self._due_changed(set())
        self._notify(asset_id, None)
        self._changed()
        self._save()
        self._save_readings(True)  # emptied by hand: the container's own state changed too

    # -- the route and the plan ---------------------------------------------------------------

    def shown_route(self) -> tuple[list[str], float]:
        """The due containers in the latest plan's order (newly due ones last) and its length.

        This is what the to-do list shows; it never plans, so reading it is cheap.
        """
        if self._shown is not None and self._shown[0] == self._due_version:
            return self._shown[1], self._shown[2]
        due = self.due
        order = [asset_id for asset_id in self._order if asset_id in due]
        listed = set(order)
        order += sorted(
            (asset_id for asset_id in due if asset_id not in listed),
            key=lambda asset_id: self.containers[asset_id].spec.name,
        )
        specs = [self.containers[asset_id].spec for asset_id in order]
        length = tour_length_m(
            self.depot(), [Stop(spec.name, spec.latitude, spec.longitude) for spec in specs]
        )
        self._shown = (self._due_version, order, length)
        return order, length

    def depot(self) -> Stop:
        """Where the site's collection vehicle starts and ends."""
        settings = self.site.settings
        return Stop("depot", settings.depot_latitude, settings.depot_longitude)

    def due_stops(self) -> list[Stop]:
        """The due containers as stops, named by asset id (names repeat across sites)."""
        containers = self.containers
        return [
            Stop(asset_id, spec.latitude, spec.longitude)
            for asset_id in sorted(self.due)
            for spec in (containers[asset_id].spec,)
        ]

    async def async_tour(self, depot: Stop, stops: Sequence[Stop]) -> CollectionTour:
        """Plan in a worker thread; the same stops from the same depot reuse the last tour.

        Requests that come while the same tour is being planned wait for that one plan.
        """
        key = (depot, tuple(stops))
        if (tour := self._plans.get(key)) is not None:
            return tour
        if (running := self._planning.get(key)) is None:
            running = self.hass.async_add_executor_job(plan_tour, depot, stops)
            self._planning[key] = running
            running.add_done_callback(lambda _: self._planning.pop(key, None))
        tour = await asyncio.shield(running)
        if key not in self._plans:
            self.plans_computed += 1
            if len(self._plans) >= PLANS_KEPT:
                del self._plans[next(iter(self._plans))]
            self._plans[key] = tour
        return tour

    async def async_plan(self) -> dict[str, Any]:
        """The site's collection plan as plain data; the route follows its order."""
        return await async_plan_collection([self])

    def stop_data(self, asset_id: str) -> dict[str, Any]:
        """One stop of a plan as plain data."""
        container = self.containers[asset_id]
        spec, status = container.spec, container.status
        predicted = container.predicted_full(self.site.settings.full_threshold)
        return {
            "asset_id": asset_id,
            "config_entry_id": self.entry.entry_id,
            "site": self.entry.title,
            "name": spec.name,
            "latitude": spec.latitude,
            "longitude": spec.longitude,
            "waste_kind": spec.waste_kind.value,
            "fill_level": status.fill_level,
            "predicted_full": predicted.isoformat() if predicted else None,
            "online": status.online,
        }

    def follow_plan(self, order: list[str]) -> None:
        """The route takes the order of this site's latest plan."""
        self._planned = set(order)
        if order != self._order:
            self._order = order
            self._due_version += 1
            self._changed()

    async def _async_replan(self) -> None:
        if not self.due <= self._planned:
            await _async_visits([self])  # the route needs the order only, not the answer


async def _async_visits(
    collections: Sequence[WasteCollection],
) -> tuple[Stop, list[Stop], dict[str, WasteCollection], float]:
    """Plan one tour over the due containers of the sites, from the first site's depot."""
    depot = collections[0].depot()
    owner: dict[str, WasteCollection] = {}
    stops: list[Stop] = []
    for collection in collections:
        for stop in collection.due_stops():
            owner[stop.name] = collection
            stops.append(stop)
    tour = await collections[0].async_tour(depot, stops)
    # Planning took a while: a container emptied (or ticked) meanwhile is no stop any more.
    visited = [stop for stop in tour.stops if stop.name in owner[stop.name].due]
    length = tour.length_m if len(visited) == len(tour.stops) else tour_length_m(depot, visited)
    if len(collections) == 1:
        collections[0].follow_plan([stop.name for stop in visited])
    return depot, visited, owner, length


async def async_plan_collection(collections: Sequence[WasteCollection]) -> dict[str, Any]:
    """One tour over the due containers of one or more sites, from the first site's depot."""
    depot, visited, owner, length = await _async_visits(collections)
    return {
        "depot": {"latitude": depot.latitude, "longitude": depot.longitude},
        "sites": [
            {"config_entry_id": c.entry.entry_id, "name": c.entry.title} for c in collections
        ],
        "stops": [owner[stop.name].stop_data(stop.name) for stop in visited],
        "length_m": length,
    }
