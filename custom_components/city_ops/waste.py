"""The site's waste containers at run time: readings in, events, due containers and the plan out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback
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


class WasteCollection:
    """Emptyings, fire alarms, silent sensors, the crew's route and the collection plan."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: CityOpsConfigEntry,
        site: Site,
        *,
        notify: Callable[[str], None],
        site_changed: Callable[[], None],
        save: Callable[[], None],
    ) -> None:
        """Work on the site's containers.

        `notify(asset_id)` refreshes one container's entities, `site_changed()` the site's
        (debounced), `save()` schedules a save of the site's store.
        """
        self.hass = hass
        self.entry = entry
        self.site = site
        self.containers = site.containers
        self._notify = notify
        self._site_changed = site_changed
        self._save = save
        self.completed: dict[str, datetime] = {}
        self.route = CrewRoute()
        self._version = 0
        self._plan: tuple[int, dict[str, Any]] | None = None

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

    def to_store(self) -> dict[str, Any]:
        """What survives a restart."""
        return {
            "containers": {
                asset_id: container.to_dict() for asset_id, container in self.containers.items()
            },
            "completed": {asset_id: at.isoformat() for asset_id, at in self.completed.items()},
            "route": self.route.to_dict(),
        }

    # -- what the containers say --------------------------------------------------------------

    @callback
    def apply(self, asset_id: str, reading: Reading, now: datetime) -> None:
        """Fold a report into a container; announce emptyings and fire alarms."""
        container = self.containers[asset_id]
        update = container.apply(reading, now, self.site.settings.full_threshold)
        self._announce(asset_id, container, update)
        self._version += 1
        self._notify(asset_id)
        self._site_changed()
        self._save()

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
    def tick(self, now: datetime) -> None:
        """Minute tick: silent containers go unavailable, old emptyings and tours are dropped."""
        for asset_id in self.site.went_offline(now):
            container = self.containers[asset_id]
            LOGGER.warning(
                "%s has not reported for %s intervals of %s s; marking it unavailable",
                container.spec.name,
                OFFLINE_AFTER_INTERVALS,
                container.spec.report_interval_s,
            )
            self._notify(asset_id)
            self._save()
        cutoff = now - COMPLETED_KEPT
        for asset_id in [a for a, at in self.completed.items() if at < cutoff]:
            del self.completed[asset_id]
        self.route.forget_before(tour_start())
        # Predictions move with time even without messages (the runtime refreshes the site).
        self._version += 1

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
        self._version += 1
        self._notify(asset_id)
        self._site_changed()
        self._save()

    # -- the plan -----------------------------------------------------------------------------

    def collection_plan(self, now: datetime) -> dict[str, Any]:
        """The collection tour as plain data (service response, todo items and due count).

        A plan is reused until something on the site changes; the minute tick counts as a
        change because predictions age.
        """
        if self._plan is not None and self._plan[0] == self._version:
            return self._plan[1]
        plan = self._collection_plan(now)
        self._plan = (self._version, plan)
        return plan

    def _collection_plan(self, now: datetime) -> dict[str, Any]:
        tour, ids = self.site.collection_tour(now, self.route.handled(tour_start()).keys())
        stops = []
        for stop in tour.stops:
            asset_id = ids[stop.name]
            container = self.containers[asset_id]
            status = container.status
            predicted = container.predicted_full(self.site.settings.full_threshold)
            stops.append(
                {
                    "asset_id": asset_id,
                    "name": stop.name,
                    "latitude": stop.latitude,
                    "longitude": stop.longitude,
                    "waste_kind": container.spec.waste_kind.value,
                    "fill_level": status.fill_level,
                    "predicted_full": predicted.isoformat() if predicted else None,
                    "online": status.online,
                }
            )
        return {
            "depot": {"latitude": tour.depot.latitude, "longitude": tour.depot.longitude},
            "stops": stops,
            "length_m": tour.length_m,
        }
