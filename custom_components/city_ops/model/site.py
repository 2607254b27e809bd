"""A site: its assets, which device feeds which asset, and the collection tour."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..sources.reading import Reading
from .container import Container, ContainerSpec, ContainerUpdate
from .lighting import Lighting, Mast
from .locker import LockerBank
from .tour import CollectionTour, Stop, plan_tour


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """Site-wide thresholds and the depot the collection vehicle starts from."""

    full_threshold: float = 80.0
    due_horizon: timedelta = timedelta(hours=24)
    depot_latitude: float = 0.0
    depot_longitude: float = 0.0


class Site:
    """All assets of one site, addressed by asset id or by source binding."""

    def __init__(self, settings: SiteSettings) -> None:
        """Start empty; assets are added as the site's subentries are read."""
        self.settings = settings
        self.containers: dict[str, Container] = {}
        self.masts: dict[str, Mast] = {}
        self.mast_ids: dict[str, str] = {}  # mast name -> asset id
        self.lighting = Lighting({})
        self.locker_banks: dict[str, LockerBank] = {}
        self._by_binding: dict[tuple[str, str], str] = {}

    def add_container(
        self, asset_id: str, container: Container, source_kind: str, device: str
    ) -> None:
        """Register a container and the device that feeds it."""
        self.containers[asset_id] = container
        self._by_binding[(source_kind, device)] = asset_id

    def add_mast(self, asset_id: str, mast: Mast, bindings: Iterable[tuple[str, str]]) -> None:
        """Register a mast and every device that reports for it (luminaire, motion, light)."""
        self.masts[asset_id] = mast
        self.mast_ids[mast.spec.name] = asset_id
        for binding in bindings:
            self._by_binding[binding] = asset_id
        self.lighting = Lighting({m.spec.name: m for m in self.masts.values()})

    def add_locker_bank(
        self, asset_id: str, bank: LockerBank, source_kind: str, device: str
    ) -> None:
        """Register a locker bank and the controller (or ZHA device) behind it."""
        self.locker_banks[asset_id] = bank
        self._by_binding[(source_kind, device)] = asset_id

    def asset_for(self, source_kind: str, device: str) -> str | None:
        """Return the asset a device feeds, if any."""
        return self._by_binding.get((source_kind, device))

    def devices(self, source_kind: str) -> list[str]:
        """Devices of one source kind, for per-device subscriptions."""
        return sorted({device for kind, device in self._by_binding if kind == source_kind})

    def apply(self, asset_id: str, reading: Reading, now: datetime) -> ContainerUpdate:
        """Feed a reading to the asset it belongs to."""
        mast = self.masts.get(asset_id)
        if mast is not None:
            mast.apply(reading, now)
            return ContainerUpdate()
        return self.containers[asset_id].apply(reading, now, self.settings.full_threshold)

    def due(self, now: datetime, handled: Collection[str] = ()) -> list[str]:
        """Asset ids of containers due for collection, except those the crew handled."""
        settings = self.settings
        return [
            asset_id
            for asset_id, container in self.containers.items()
            if asset_id not in handled
            and container.is_due(now, settings.full_threshold, settings.due_horizon)
        ]

    def collection_tour(
        self, now: datetime, handled: Collection[str] = ()
    ) -> tuple[CollectionTour, dict[str, str]]:
        """Plan the tour over the due containers; also map stop names back to asset ids."""
        depot = Stop("depot", self.settings.depot_latitude, self.settings.depot_longitude)
        ids = self.due(now, handled)
        stops = [self._stop(self.containers[asset_id].spec) for asset_id in ids]
        names = {self.containers[asset_id].spec.name: asset_id for asset_id in ids}
        return plan_tour(depot, stops), names

    @staticmethod
    def _stop(spec: ContainerSpec) -> Stop:
        return Stop(spec.name, spec.latitude, spec.longitude)

    def went_offline(self, now: datetime) -> Iterable[str]:
        """Asset ids whose containers just missed too many reports."""
        return [
            asset_id
            for asset_id, container in self.containers.items()
            if container.check_online(now) is False
        ]
