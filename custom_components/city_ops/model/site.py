"""A site: its assets and which device feeds which asset."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .container import Container
from .lighting import Lighting, Mast, MastSpec
from .locker import LockerBank


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

    def remove_container(self, asset_id: str) -> None:
        """Forget a container and the device that fed it."""
        del self.containers[asset_id]
        self._unbind(asset_id)

    def rebind(self, asset_id: str, source_kind: str, device: str) -> None:
        """A container (or a bank) now fed by another device."""
        self._unbind(asset_id)
        self._by_binding[(source_kind, device)] = asset_id

    def _unbind(self, asset_id: str) -> None:
        for binding in [b for b, bound in self._by_binding.items() if bound == asset_id]:
            del self._by_binding[binding]

    def add_mast(self, asset_id: str, mast: Mast, bindings: Iterable[tuple[str, str]]) -> None:
        """Register a mast and every device that reports for it (luminaire, motion, light)."""
        self.masts[asset_id] = mast
        self.mast_ids[mast.spec.name] = asset_id
        for binding in bindings:
            self._by_binding[binding] = asset_id
        self.lighting.put(mast)

    def change_mast(
        self, asset_id: str, spec: MastSpec, bindings: Iterable[tuple[str, str]]
    ) -> None:
        """A mast moved, renamed, re-bound or given other neighbours; its status stays."""
        mast = self.masts[asset_id]
        old_name = mast.spec.name
        mast.spec = spec
        if old_name != spec.name:
            del self.mast_ids[old_name]
            self.mast_ids[spec.name] = asset_id
        self._unbind(asset_id)
        for binding in bindings:
            self._by_binding[binding] = asset_id
        self.lighting.put(mast, old_name)

    def remove_mast(self, asset_id: str) -> None:
        """Forget a mast and every device that reported for it."""
        mast = self.masts.pop(asset_id)
        del self.mast_ids[mast.spec.name]
        self._unbind(asset_id)
        self.lighting.remove(mast.spec.name)

    def add_locker_bank(
        self, asset_id: str, bank: LockerBank, source_kind: str, device: str
    ) -> None:
        """Register a locker bank and the controller (or ZHA device) behind it."""
        self.locker_banks[asset_id] = bank
        self._by_binding[(source_kind, device)] = asset_id

    def remove_locker_bank(self, asset_id: str) -> LockerBank:
        """Forget a locker bank and its controller; return it (its bookings may be kept)."""
        bank = self.locker_banks.pop(asset_id)
        self._unbind(asset_id)
        return bank

    def asset_for(self, source_kind: str, device: str) -> str | None:
        """Return the asset a device feeds, if any."""
        return self._by_binding.get((source_kind, device))

    def devices(self, source_kind: str) -> list[str]:
        """Devices of one source kind, for per-device subscriptions."""
        return sorted({device for kind, device in self._by_binding if kind == source_kind})

    def went_offline(self, now: datetime) -> Iterable[str]:
        """Asset ids whose containers just missed too many reports."""
        return [
            asset_id
            for asset_id, container in self.containers.items()
            if container.check_online(now) is False
        ]
