"""A running site: MQTT feeds the decoders, decoders feed the model, the model feeds entities."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from homeassistant.components import mqtt
from homeassistant.components.mqtt.models import ReceiveMessage
from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
    ConfigEntryState,
)
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.event import (
    EventStateChangedData,
    async_call_later,
    async_track_state_added_domain,
    async_track_time_interval,
)
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import (
    CONF_CHIRPSTACK_TOPIC,
    CONF_DEPOT,
    CONF_DUE_HORIZON_H,
    CONF_FULL_THRESHOLD,
    CONF_NATIVE_BASE,
    CONF_TTN_TOPIC,
    CONF_ZIGBEE2MQTT_BASE,
    DEFAULT_CHIRPSTACK_TOPIC,
    DEFAULT_DUE_HORIZON_H,
    DEFAULT_FULL_THRESHOLD,
    DEFAULT_NATIVE_BASE,
    DEFAULT_TTN_TOPIC,
    DEFAULT_ZIGBEE2MQTT_BASE,
    DOMAIN,
    EVENT_CONTAINER_EMPTIED,
    EVENT_CONTAINER_FIRE,
    LOGGER,
    SUBENTRY_CONTAINER,
    SUBENTRY_LOCKER_BANK,
    SUBENTRY_MAST,
)
from .lending import Lending, locker_bank_spec
from .model.assets import Asset, asset_from_subentry
from .model.container import (
    OFFLINE_AFTER_INTERVALS,
    Container,
    ContainerSpec,
    ContainerUpdate,
    WasteKind,
)
from .model.lighting import Mast
from .model.locker import LockerBank, LockerRefused
from .model.route import CrewRoute, StopDone
from .model.site import Site, SiteSettings
from .sources import lorawan, native, zigbee2mqtt
from .sources.reading import (
    CompartmentReading,
    DecodeError,
    LockerReading,
    Reading,
    SourceKind,
)
from .street_lighting import ParkLighting, mast_bindings, mast_spec, site_profile
from .throttled_log import ThrottledLog

type CityOpsConfigEntry = ConfigEntry[CityOpsRuntime]
type Decoder = Callable[[str, bytes | str], Reading | LockerReading]

STORAGE_VERSION = 1
SAVE_DELAY_S = 5
OFFLINE_CHECK = timedelta(minutes=1)
LENDING_TICK = timedelta(seconds=10)
SITE_REFRESH_COOLDOWN_S = 1.0
COMPLETED_KEPT = timedelta(hours=24)
SUBSCRIBE_WAIT_S = 10


@dataclass(slots=True)
class MessageStats:
    """Counters shown in diagnostics."""

    received: int = 0
    applied: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejected_fields: Counter[str] = field(default_factory=Counter)
    unknown_devices: int = 0
    internal_errors: int = 0


def tour_start() -> datetime:
    """A crew's tour is a working day: it begins at local midnight."""
    return dt_util.start_of_local_day()


def site_settings(hass: HomeAssistant, entry: CityOpsConfigEntry) -> SiteSettings:
    """Read the behaviour settings of a site from its options (with defaults)."""
    options = entry.options
    depot = options.get(CONF_DEPOT) or {}
    return SiteSettings(
        full_threshold=float(options.get(CONF_FULL_THRESHOLD, DEFAULT_FULL_THRESHOLD)),
        due_horizon=timedelta(hours=float(options.get(CONF_DUE_HORIZON_H, DEFAULT_DUE_HORIZON_H))),
        depot_latitude=float(depot.get("latitude", hass.config.latitude)),
        depot_longitude=float(depot.get("longitude", hass.config.longitude)),
    )


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


def config_signature(entry: CityOpsConfigEntry) -> tuple[Any, ...]:
    """What the runtime was built from; a change means the site must be rebuilt."""
    subentries = tuple(
        sorted(
            (sid, sub.subentry_type, repr(dict(sub.data))) for sid, sub in entry.subentries.items()
        )
    )
    return (repr(dict(entry.data)), repr(dict(entry.options)), subentries)


class CityOpsRuntime:
    """The live site behind one config entry."""

    def __init__(self, hass: HomeAssistant, entry: CityOpsConfigEntry) -> None:
        """Build the site model from the entry and its asset subentries."""
        self.hass = hass
        self.entry = entry
        self.signature = config_signature(entry)
        self.bulk_update = False
        self.site_device_id = ""
        self.site = Site(site_settings(hass, entry))
        self.assets: dict[str, Asset] = {}
        profile = site_profile(entry.options)
        for subentry_id, subentry in entry.subentries.items():
            if subentry.subentry_type == SUBENTRY_CONTAINER:
                asset = asset_from_subentry(SUBENTRY_CONTAINER, subentry.data)
                self.assets[subentry_id] = asset
                self.site.add_container(
                    subentry_id, Container(container_spec(asset)), asset.source_kind, asset.device
                )
            elif subentry.subentry_type == SUBENTRY_MAST:
                asset = asset_from_subentry(SUBENTRY_MAST, subentry.data)
                self.assets[subentry_id] = asset
                self.site.add_mast(
                    subentry_id,
                    Mast(mast_spec(asset, profile, entry.options)),
                    mast_bindings(asset),
                )
            elif subentry.subentry_type == SUBENTRY_LOCKER_BANK:
                asset = asset_from_subentry(SUBENTRY_LOCKER_BANK, subentry.data)
                self.assets[subentry_id] = asset
                self.site.add_locker_bank(
                    subentry_id,
                    LockerBank(locker_bank_spec(asset)),
                    asset.source_kind,
                    asset.device,
                )
        self.lighting = ParkLighting(hass, entry, self.site, self.assets, self._notify_asset)
        self.lending = Lending(
            hass,
            entry,
            self.site,
            self.assets,
            notify=self._notify_asset,
            save_now=self.async_save_now,
        )
        self.stats = MessageStats()
        self.log = ThrottledLog(LOGGER)
        self.completed: dict[str, datetime] = {}
        self.route = CrewRoute()
        self._version = 0
        self._save_pending = False
        self._plan: tuple[int, dict[str, Any]] | None = None
        self._store: Store[dict[str, Any]] = Store(
            hass,
            STORAGE_VERSION,
            f"{DOMAIN}.{entry.entry_id}",
            atomic_writes=True,
            private=True,  # code hashes: readable by Home Assistant's user only
        )
        self._listeners: dict[str, list[CALLBACK_TYPE]] = {}
        self._site_listeners: list[CALLBACK_TYPE] = []
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._topics: list[str] = []
        self._site_refresh = Debouncer(
            hass,
            LOGGER,
            cooldown=SITE_REFRESH_COOLDOWN_S,
            immediate=True,
            function=self._notify_site,
            background=True,
        )

    # -- life cycle -------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Restore persisted state, then subscribe to the wire."""
        stored = await self._store.async_load() or {}
        for asset_id, data in (stored.get("containers") or {}).items():
            container = self.site.containers.get(asset_id)
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
            if when is not None and asset_id in self.site.containers:
                self.completed[asset_id] = when
        route = stored.get("route")
        if isinstance(route, Mapping):
            self.route = CrewRoute.from_dict(route)
        self.lighting.restore(stored)
        self.lending.restore(stored)
        await self._async_subscribe()
        self._start_zha()
        # After a restart every mast goes to what the profile wants now: none left dark when
        # it should be lit, none left at boost forever.
        for mast in self.site.masts.values():
            mast.status.commanded_level = None
        if self.site.masts:
            self._when_subscribed(self.lighting.start)
        self._unsubscribe.append(
            async_track_time_interval(self.hass, self._check_online, OFFLINE_CHECK)
        )
        if self.site.locker_banks:
            # Unlocks time out after 90 s and late item reports count for 60 s: a minute tick
            # would stretch both by up to a minute.
            self._unsubscribe.append(
                async_track_time_interval(self.hass, self.lending.tick, LENDING_TICK)
            )
        self._check_online(dt_util.utcnow())

    def _start_zha(self) -> None:
        """Attach to ZHA for the assets reached through it, now or whenever ZHA (re)loads."""
        if not self.site.devices("zha"):
            return
        from .sources.zha import ZhaDevices  # noqa: PLC0415  (only sites with ZHA assets)

        zha = ZhaDevices(self.hass, lambda reading: self._handle_reading("zha", reading))
        self.lighting.zha = zha
        self.lending.zha = zha
        # ZHA may come up after the site (a radio that is slow to answer retries its entry)
        # and a reload gives zigpy new device objects: attach again each time it is loaded.
        self._unsubscribe.append(
            async_dispatcher_connect(self.hass, SIGNAL_CONFIG_ENTRY_CHANGED, self._zha_changed)
        )
        if self._zha_banks():
            # A bank paired (or ZHA loaded) after the site brings new ZHA lock entities; only
            # once they run does disabling them also take them down.
            self._unsubscribe.append(
                async_track_state_added_domain(self.hass, "lock", self._zha_lock_added)
            )
        if not ZhaDevices.available(self.hass):
            LOGGER.warning(
                "%s has assets reached through ZHA, but ZHA is not loaded yet; "
                "they get no commands until it is",
                self.entry.title,
            )
            return
        self._attach_zha()

    def _zha_banks(self) -> list[str]:
        return [
            self.assets[asset_id].device
            for asset_id in self.site.locker_banks
            if self.assets[asset_id].source_kind == "zha"
        ]

    @callback
    def _zha_changed(self, change: ConfigEntryChange, entry: CityOpsConfigEntry) -> None:
        if entry.domain == "zha" and entry.state is ConfigEntryState.LOADED:
            self._attach_zha()

    @callback
    def _zha_lock_added(self, event: Event[EventStateChangedData]) -> None:
        entity = er.async_get(self.hass).async_get(event.data["entity_id"])
        if entity is not None and entity.platform == "zha":
            self._disable_zha_locks(self._zha_banks())

    def _attach_zha(self) -> None:
        zha = self.lending.zha
        if zha is None:
            return
        banks = self._zha_banks()
        missing = zha.async_start(self.site.devices("zha"), lockers=banks)
        if missing:
            LOGGER.warning("ZHA does not know the devices %s (yet)", ", ".join(missing))
        self._disable_zha_locks(banks)

    def _disable_zha_locks(self, ieees: list[str]) -> None:
        """Switch off ZHA's own lock entities of our banks: they would open without a code.

        Any user may call lock.unlock on them; our compartment locks check for an admin.
        """
        devices = dr.async_get(self.hass)
        entities = er.async_get(self.hass)
        for zha_entry in self.hass.config_entries.async_entries("zha"):
            for ieee in ieees:
                device = devices.async_get_device_by_identifier(("zha", ieee), zha_entry.entry_id)
                if device is None:
                    continue
                for entity in er.async_entries_for_device(entities, device.id):
                    if entity.platform != "zha" or entity.domain != "lock" or entity.disabled:
                        continue
                    entities.async_update_entity(
                        entity.entity_id, disabled_by=er.RegistryEntryDisabler.INTEGRATION
                    )
                    LOGGER.warning(
                        "Disabled %s: compartments of %s open only with a code or by an admin",
                        entity.entity_id,
                        self.entry.title,
                    )

    async def async_stop(self) -> None:
        """Unsubscribe and write the state out now rather than after the save delay."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self.lighting.stop()
        await self.lending.async_stop()
        self._site_refresh.async_shutdown()
        await self._store.async_save(self._data_to_store())

    async def _async_subscribe(self) -> None:
        data = self.entry.data
        subscriptions: list[tuple[str, Decoder, SourceKind]] = []
        if self.site.devices(SourceKind.TTN):
            subscriptions.append(
                (data.get(CONF_TTN_TOPIC, DEFAULT_TTN_TOPIC), lorawan.decode_ttn, SourceKind.TTN)
            )
        if self.site.devices(SourceKind.CHIRPSTACK):
            subscriptions.append(
                (
                    data.get(CONF_CHIRPSTACK_TOPIC, DEFAULT_CHIRPSTACK_TOPIC),
                    lorawan.decode_chirpstack,
                    SourceKind.CHIRPSTACK,
                )
            )
        z2m_base = data.get(CONF_ZIGBEE2MQTT_BASE, DEFAULT_ZIGBEE2MQTT_BASE)
        for device in self.site.devices(SourceKind.ZIGBEE2MQTT):
            subscriptions.append(
                (
                    zigbee2mqtt.state_topic(z2m_base, device),
                    lambda topic, payload: zigbee2mqtt.decode(z2m_base, topic, payload),
                    SourceKind.ZIGBEE2MQTT,
                )
            )
        native_base = data.get(CONF_NATIVE_BASE, DEFAULT_NATIVE_BASE)
        banks = {self.assets[asset_id].device for asset_id in self.site.locker_banks}
        for device in self.site.devices(SourceKind.NATIVE):
            if device in banks:
                continue
            subscriptions.append(
                (
                    native.state_topic(native_base, device),
                    lambda topic, payload: native.decode(native_base, topic, payload),
                    SourceKind.NATIVE,
                )
            )
        handlers = [
            (topic, self._message_handler(kind, decoder)) for topic, decoder, kind in subscriptions
        ]
        for topic, retained_ok in self.lending.native_topics():
            handlers.append(
                (topic, self._message_handler(SourceKind.NATIVE, self.lending.decode, retained_ok))
            )
        handlers += self.lighting.subscriptions()
        for topic, handler in handlers:
            self._unsubscribe.append(
                await mqtt.async_subscribe(self.hass, topic, handler, qos=1, encoding=None)
            )
        self._topics = [topic for topic, _ in handlers]

    @callback
    def _when_subscribed(self, then: Callable[[], None]) -> None:
        """Call `then` once the broker acknowledged every subscription (or after a while).

        Commands sent before would be answered into the void: a luminaire's answer to the
        start-up command is how the site learns its level.
        """
        pending = set(self._topics)
        stops: list[CALLBACK_TYPE] = []
        done = False

        @callback
        def stop_waiting() -> None:
            nonlocal done
            done = True
            for stop in stops:
                stop()
            stops.clear()

        @callback
        def finish(_: Any = None) -> None:
            if done:
                return
            stop_waiting()
            if pending:
                LOGGER.warning(
                    "%s: the broker has not confirmed %d subscriptions after %s s; going on",
                    self.entry.title,
                    len(pending),
                    SUBSCRIBE_WAIT_S,
                )
            then()

        for topic in self._topics:

            @callback
            def acknowledged(topic: str = topic) -> None:
                pending.discard(topic)
                if not pending:
                    finish()

            stops.append(mqtt.async_on_subscribe_done(self.hass, topic, 1, acknowledged))
        stops.append(async_call_later(self.hass, SUBSCRIBE_WAIT_S, finish))
        self._unsubscribe.append(stop_waiting)
        if not pending:
            finish()

    def _message_handler(
        self, kind: SourceKind, decoder: Decoder, retained_ok: bool = True
    ) -> Callable[[ReceiveMessage], None]:
        @callback
        def handle(message: ReceiveMessage) -> None:
            if message.retain and not retained_ok:
                self.stats.received += 1
                self.stats.rejected["retained"] += 1
                self.log.warning(
                    f"retained:{kind}",
                    "Ignoring a retained message on %s: keypad entries must not be retained",
                    message.topic[:120],
                )
                return
            try:
                self._handle(kind, decoder, message.topic, message.payload)
            except Exception:  # a bug here must never reach the MQTT client
                self.stats.internal_errors += 1
                self.log.exception(
                    f"internal:{kind}",
                    "Unexpected error handling %s message on %s",
                    kind,
                    message.topic[:120],
                )

        return handle

    # -- messages ---------------------------------------------------------------------------

    @callback
    def _handle(
        self,
        kind: SourceKind,
        decoder: Decoder,
        topic: str,
        payload: Any,
    ) -> None:
        stats = self.stats
        stats.received += 1
        if not isinstance(payload, bytes | str):
            payload = str(payload)
        try:
            reading = decoder(topic, payload)
        except DecodeError as err:
            stats.rejected[err.reason] += 1
            self.log.warning(
                f"{kind}:{err.reason}",
                "Ignoring %s message on %s: %s (further ones like it are counted in diagnostics)",
                kind,
                topic[:120],
                err,
            )
            return
        self._handle_reading(kind, reading)

    @callback
    def _handle_reading(self, kind: str, reading: Reading | LockerReading) -> None:
        stats = self.stats
        asset_id = self.site.asset_for(kind, reading.device)
        if asset_id is None:
            # Wildcard subscriptions see every device of the network server; most are not ours.
            stats.unknown_devices += 1
            self.log.info(
                f"unknown:{kind}",
                "Ignoring %s messages from device %s: no asset of %s is bound to it",
                kind,
                reading.device,
                self.entry.title,
            )
            return
        if not isinstance(reading, Reading):
            self._handle_locker(asset_id, reading)
            return
        if asset_id in self.site.locker_banks:
            # A bank's battery or other clusters: nothing a bank shows yet.
            stats.rejected["not_for_locker_bank"] += 1
            return
        self._count_rejected(asset_id, reading.rejected)
        now = dt_util.utcnow()
        stats.applied += 1
        if asset_id in self.site.masts:
            self.lighting.apply(asset_id, reading, now)
            self._schedule_save()
            return
        update = self.site.apply(asset_id, reading, now)
        self._after_update(asset_id, update)

    @callback
    def _handle_locker(self, asset_id: str, reading: LockerReading) -> None:
        stats = self.stats
        if asset_id not in self.site.locker_banks:
            stats.rejected["not_a_locker_bank"] += 1
            self.log.warning(
                f"not_bank:{asset_id}",
                "%s is not a locker bank; ignoring locker messages for it",
                self.assets[asset_id].name,
            )
            return
        if isinstance(reading, CompartmentReading):
            self._count_rejected(asset_id, reading.rejected)
        try:
            self.lending.handle(asset_id, reading)
        except LockerRefused as err:
            stats.rejected[err.reason] += 1
            self.log.warning(
                f"{err.reason}:{asset_id}",
                "%s reported %s %s, which it does not have",
                self.assets[asset_id].name,
                err.reason.replace("unknown_", ""),
                err.details.get("compartment", ""),
            )
            return
        stats.applied += 1

    def _count_rejected(self, asset_id: str, rejected: tuple[str, ...]) -> None:
        """Unusable fields are counted and logged; the rest of the message still counts."""
        for name in rejected:
            self.stats.rejected_fields[name] += 1
        if rejected:
            self.log.warning(
                f"fields:{asset_id}",
                "%s sent unusable values for %s; kept the rest of the message",
                self.assets[asset_id].name,
                ", ".join(rejected),
            )

    @callback
    def _notify_asset(self, asset_id: str) -> None:
        for listener in self._listeners.get(asset_id, ()):
            listener()

    def _after_update(self, asset_id: str, update: ContainerUpdate) -> None:
        container = self.site.containers[asset_id]
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
        self._version += 1
        for listener in self._listeners.get(asset_id, ()):
            listener()
        self._site_refresh.async_schedule_call()
        self._schedule_save()

    @callback
    def _check_online(self, now: datetime) -> None:
        for asset_id in self.site.went_offline(now):
            container = self.site.containers[asset_id]
            LOGGER.warning(
                "%s has not reported for %s intervals of %s s; marking it unavailable",
                container.spec.name,
                OFFLINE_AFTER_INTERVALS,
                container.spec.report_interval_s,
            )
            for listener in self._listeners.get(asset_id, ()):
                listener()
            self._schedule_save()
        cutoff = now - COMPLETED_KEPT
        for asset_id in [a for a, at in self.completed.items() if at < cutoff]:
            del self.completed[asset_id]
        self.route.forget_before(tour_start())
        if self.site.masts:
            self.lighting.tick(now)
            self._schedule_save()

        # Predictions move with time even without messages.
        self._version += 1
        self._site_refresh.async_schedule_call()

    # -- listeners --------------------------------------------------------------------------

    @callback
    def async_add_listener(self, asset_id: str, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener` whenever the asset changes."""
        listeners = self._listeners.setdefault(asset_id, [])
        listeners.append(listener)

        def remove() -> None:
            listeners.remove(listener)

        return remove

    @callback
    def async_add_site_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `listener` (debounced) whenever anything on the site changes."""
        self._site_listeners.append(listener)

        def remove() -> None:
            self._site_listeners.remove(listener)

        return remove

    @callback
    def _notify_site(self) -> None:
        for listener in list(self._site_listeners):
            listener()

    # -- queries ----------------------------------------------------------------------------

    def collection_plan(self, now: datetime) -> dict[str, Any]:
        """The collection tour as plain data (service response, todo items and due count).

        Planning is quadratic in the due containers, so a plan is reused until something on
        the site changes; the minute tick counts as a change because predictions age.
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
            container = self.site.containers[asset_id]
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

    @callback
    def empty_by_hand(self, asset_id: str, by: str) -> StopDone:
        """The crew emptied a container and ticked its stop: a collection like a detected one."""
        now = dt_util.utcnow()
        container = self.site.containers[asset_id]
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
        for listener in self._listeners.get(asset_id, ()):
            listener()
        self._site_refresh.async_schedule_call()
        self._schedule_save()

    @callback
    def _schedule_save(self) -> None:
        """Save at most SAVE_DELAY_S after the first unsaved change.

        Store's delay restarts with every call; a busy site would then never save until
        shutdown, and a crash would lose everything since start.
        """
        if not self._save_pending:
            self._save_pending = True
            self._store.async_delay_save(self._data_to_store, SAVE_DELAY_S)

    async def async_save_now(self) -> None:
        """Write everything at once: a booking or a lock-out must survive a crash right after."""
        await self._store.async_save(self._data_to_store())

    def _data_to_store(self) -> dict[str, Any]:
        self._save_pending = False
        return {
            "containers": {
                asset_id: container.to_dict()
                for asset_id, container in self.site.containers.items()
            },
            "completed": {asset_id: at.isoformat() for asset_id, at in self.completed.items()},
            "route": self.route.to_dict(),
            **self.lighting.to_store(),
            **self.lending.to_store(),
        }
