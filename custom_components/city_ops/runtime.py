"""A running site: MQTT feeds the decoders, decoders feed the model, the model feeds entities."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
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
from homeassistant.helpers import (
    device_registry as dr,
    entity_platform,
    entity_registry as er,
)
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

from .budget import COMPARTMENT_SLOTS, EntityBudget
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
    LOGGER,
    SUBENTRY_CONTAINER,
    SUBENTRY_LOCKER_BANK,
    SUBENTRY_MAST,
    WASTE_KIND_MODEL,
)
from .lending import Lending, locker_bank_spec
from .model.assets import Asset, asset_from_subentry
from .model.container import Container
from .model.lighting import Mast
from .model.locker import LockerBank, LockerRefused
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
from .uplinks import LORAWAN, async_join
from .waste import WasteCollection, container_spec

type CityOpsConfigEntry = ConfigEntry[CityOpsRuntime]
type Decoder = Callable[[str, bytes | str], Reading | LockerReading]

STORAGE_VERSION = 1
SAVE_DELAY_S = 5
# A container's reading comes again with its next uplink, so the containers' store is written
# at most this long after the first unsaved reading: a busy site does not rewrite thousands of
# containers every few seconds. Emptyings and alarms are saved within SAVE_DELAY_S (see
# docs/architecture.md, Persistence).
READINGS_SAVE_DELAY_S = 300
# Masts' energy counters grow with every minute tick: they are written at most this long
# after the first unsaved change, so a crash loses at most this much of them. Faults,
# availability and hand overrides are saved within SAVE_DELAY_S.
MASTS_SAVE_DELAY_S = 300
OFFLINE_CHECK = timedelta(minutes=1)
LENDING_TICK = timedelta(seconds=10)
SITE_REFRESH_COOLDOWN_S = 1.0
SUBSCRIBE_WAIT_S = 10
CHANGES_BATCH = 50  # assets added or changed in place between two yields to the loop
# Asset kinds added, changed and removed without a site reload.
IN_PLACE_KINDS = frozenset({SUBENTRY_CONTAINER, SUBENTRY_MAST, SUBENTRY_LOCKER_BANK})


@dataclass(slots=True)
class MessageStats:
    """Counters shown in diagnostics."""

    received: int = 0
    applied: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejected_fields: Counter[str] = field(default_factory=Counter)
    unknown_devices: int = 0
    internal_errors: int = 0


_PAYLOAD_TYPES = (bytes, str)  # a tuple: `bytes | str` would build a union per message


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


def site_store_key(entry_id: str) -> str:
    """The store of a site's lockers, masts, route and emptyings."""
    return f"{DOMAIN}.{entry_id}"


def readings_store_key(entry_id: str) -> str:
    """The store of a site's container readings."""
    return f"{DOMAIN}.containers.{entry_id}"


def masts_store_key(entry_id: str) -> str:
    """The store of a site's masts: levels, faults, energy counters."""
    return f"{DOMAIN}.masts.{entry_id}"


class SiteStore:
    """One private store of a site, written at most a given delay after its first change.

    Store's own delay restarts with every call; a busy site would then never save until
    shutdown, and a crash would lose everything since start. A shorter delay asked for while
    a longer one runs brings the save forward.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        key: str,
        snapshot: Callable[[], dict[str, Any]],
        *,
        in_thread: bool = False,
    ) -> None:
        """Prepare the store; `snapshot()` gives what to write.

        With `in_thread`, snapshot() runs and its result is serialised in a worker thread;
        it must then read the live state in a thread-safe way.
        """
        self.hass = hass
        self._snapshot = snapshot
        self._due: float | None = None  # loop time of the save under way
        self._delay = 0.0  # the delay it was asked with
        self._in_thread = in_thread
        self._store: Store[dict[str, Any]] = Store(
            hass,
            STORAGE_VERSION,
            key,
            atomic_writes=True,
            private=True,  # code hashes: readable by Home Assistant's user only
            serialize_in_event_loop=not in_thread,
        )

    async def async_load(self) -> dict[str, Any]:
        """What was stored, or nothing."""
        return await self._store.async_load() or {}

    @callback
    def schedule(self, delay: float) -> None:
        """Write within `delay` seconds (or when a save under way is due sooner)."""
        if self._due is not None and delay >= self._delay:
            return  # asked later for no shorter a delay: the save under way comes first
        due = self.hass.loop.time() + delay
        if self._due is None or due < self._due:
            self._due = due
            self._delay = delay
            self._store.async_delay_save(self._data, delay)

    async def async_save(self) -> None:
        """Write now."""
        if self._in_thread:
            await self._store.async_save(await self.hass.async_add_executor_job(self._data))
        else:
            await self._store.async_save(self._data())

    def _data(self) -> dict[str, Any]:
        # Cleared before the snapshot: a change made while it is taken schedules the next save.
        self._due = None
        return self._snapshot()


async def async_remove_stores(hass: HomeAssistant, entry_id: str) -> None:
    """A deleted site leaves no state behind."""
    for key in (site_store_key(entry_id), readings_store_key(entry_id), masts_store_key(entry_id)):
        await Store[dict[str, Any]](hass, STORAGE_VERSION, key).async_remove()


async def async_write_device_registry(hass: HomeAssistant) -> None:
    """Write the device registry now that devices were created.

    Home Assistant writes it up to 10 s later (3 min while starting), while the subentry that
    made the device is written within a second. A crash in between gave a bank a new device id
    on the next start, stranding every caller (a booking portal) that held the old one.
    """
    registry = dr.async_get(hass)
    # No public way to flush a registry; the store and its data are what its own delayed save
    # writes, so writing them early changes nothing but the timing.
    await registry._store.async_save(registry._data_to_save())


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
        self.lighting = ParkLighting(
            hass,
            entry,
            self.site,
            self.assets,
            self._notify_asset,
            when_subscribed=self._when_subscribed,
            save=self._schedule_masts_save,
        )
        self.lending = Lending(
            hass,
            entry,
            self.site,
            self.assets,
            notify=self._notify_asset,
            save_now=self.async_save_now,
        )
        self.waste = WasteCollection(
            hass,
            entry,
            self.site,
            notify=self._notify_asset,
            site_changed=self._site_changed,
            save=self._schedule_save,
            save_readings=self._schedule_readings_save,
        )
        self.budget = EntityBudget(hass, entry)
        self.stats = MessageStats()
        self.log = ThrottledLog(LOGGER)
        self._store = SiteStore(hass, site_store_key(entry.entry_id), self._data_to_store)
        # Apart, so that a fill reading never rewrites the lockers' bookings and loans.
        self._readings = SiteStore(
            hass, readings_store_key(entry.entry_id), self.waste.readings_to_store, in_thread=True
        )
        # Apart too: a minute tick of the lighting rewrites neither bookings nor the route.
        self._masts = SiteStore(hass, masts_store_key(entry.entry_id), self.lighting.to_store)
        # asset id -> (what a listener shows, "" for everything about the asset; the listener)
        self._listeners: dict[str, tuple[tuple[str, CALLBACK_TYPE], ...]] = {}
        self._site_listeners: list[CALLBACK_TYPE] = []
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._topics: list[str] = []
        self._by_topic: dict[str, CALLBACK_TYPE] = {}  # to drop one device's topic alone
        self._uplink_handlers: dict[SourceKind, Callable[[ReceiveMessage], None]] = {}
        self._live = asyncio.Event()
        self._late = False
        self._lending_tick: CALLBACK_TYPE | None = None
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
        """Restore persisted state, subscribe, and return once the subscriptions are live.

        The site reports loaded only after this, so nothing a device sends after "loaded" is
        lost (see async_wait_live for the bound).
        """
        stored = await self._store.async_load()
        # A site saved before its containers had a store of their own finds them in its own.
        self.waste.restore(stored | await self._readings.async_load())
        # A site saved before its masts had a store of their own finds them in its own.
        self.lighting.restore(stored | await self._masts.async_load())
        self.lending.restore(stored)
        await self._async_subscribe()
        self._start_zha()
        # After a restart every mast goes to what the profile wants now: none left dark when
        # it should be lit, none left at boost forever.
        for mast in self.site.masts.values():
            mast.status.commanded_level = None
        if self.site.masts:
            self._when_subscribed(self.lighting.start)
        self._unsubscribe.append(async_track_time_interval(self.hass, self._tick, OFFLINE_CHECK))
        self._start_lending_tick()
        self._tick(dt_util.utcnow())
        await self.async_wait_live()

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
        self.waste.stop()
        await self.lending.async_stop()
        self._site_refresh.async_shutdown()
        await self._store.async_save()
        await self._readings.async_save()
        await self._masts.async_save()

    async def _async_subscribe(self) -> None:
        for kind in LORAWAN:
            if self.site.devices(kind):
                await self._async_join_uplinks(kind)
        subscriptions: list[tuple[str, Decoder, SourceKind]] = []
        for device in self.site.devices(SourceKind.ZIGBEE2MQTT):
            subscriptions.append(
                (
                    *self._device_subscription(SourceKind.ZIGBEE2MQTT, device),
                    SourceKind.ZIGBEE2MQTT,
                )
            )
        banks = {self.assets[asset_id].device for asset_id in self.site.locker_banks}
        for device in self.site.devices(SourceKind.NATIVE):
            if device in banks:
                continue
            subscriptions.append(
                (*self._device_subscription(SourceKind.NATIVE, device), SourceKind.NATIVE)
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
            unsubscribe = await mqtt.async_subscribe(
                self.hass, topic, handler, qos=1, encoding=None
            )
            self._unsubscribe.append(unsubscribe)
            self._by_topic[topic] = unsubscribe
        self._topics += [topic for topic, _ in handlers]
        self._watch_subscriptions()

    async def _async_join_uplinks(self, kind: SourceKind) -> None:
        """Take a network server's uplinks from the hub's one subscription to its topic."""
        topic, decoder = self._device_subscription(kind, "")
        self._uplink_handlers[kind] = self._message_handler(kind, decoder)
        leave = await async_join(self.hass, topic, kind, self)
        self._unsubscribe.append(leave)
        self._by_topic[topic] = leave
        self._topics.append(topic)

    def binds(self, kind: SourceKind, device: str) -> bool:
        """Whether one of the site's assets is fed by the device (for the shared uplinks)."""
        return self.site.asset_for(kind, device) is not None

    @callback
    def handle_uplink(self, kind: SourceKind, message: ReceiveMessage) -> None:
        """An uplink of one of the site's devices, from the hub's shared subscription."""
        self._uplink_handlers[kind](message)

    @callback
    def count_unknown(self, kind: SourceKind, device: str) -> None:
        """An uplink on the site's topic from a device no site on the hub is bound to."""
        self.stats.received += 1
        self._unknown_device(kind, device)

    def _device_subscription(self, kind: str, device: str) -> tuple[str, Decoder]:
        """The topic a device's reports arrive on (LoRaWAN: one for all) and its decoder."""
        data = self.entry.data
        if kind == SourceKind.TTN:
            return data.get(CONF_TTN_TOPIC, DEFAULT_TTN_TOPIC), lorawan.decode_ttn
        if kind == SourceKind.CHIRPSTACK:
            topic = data.get(CONF_CHIRPSTACK_TOPIC, DEFAULT_CHIRPSTACK_TOPIC)
            return topic, lorawan.decode_chirpstack
        if kind == SourceKind.ZIGBEE2MQTT:
            z2m_base = data.get(CONF_ZIGBEE2MQTT_BASE, DEFAULT_ZIGBEE2MQTT_BASE)
            return (
                zigbee2mqtt.state_topic(z2m_base, device),
                lambda topic, payload: zigbee2mqtt.decode(z2m_base, topic, payload),
            )
        native_base = data.get(CONF_NATIVE_BASE, DEFAULT_NATIVE_BASE)
        return (
            native.state_topic(native_base, device),
            lambda topic, payload: native.decode(native_base, topic, payload),
        )

    async def _async_follow(self, kind: str, device: str) -> None:
        """Subscribe what one more device needs, unless its topic is followed already."""
        topic, decoder = self._device_subscription(kind, device)
        if topic in self._by_topic:
            return
        if kind in LORAWAN:
            await self._async_join_uplinks(SourceKind(kind))
            return
        await self._async_subscribe_topic(topic, self._message_handler(SourceKind(kind), decoder))

    async def _async_subscribe_topic(
        self, topic: str, handler: Callable[[ReceiveMessage], None]
    ) -> None:
        unsubscribe = await mqtt.async_subscribe(self.hass, topic, handler, qos=1, encoding=None)
        self._by_topic[topic] = unsubscribe
        self._unsubscribe.append(unsubscribe)
        self._topics.append(topic)

    def _unfollow(self, kind: str, device: str) -> None:
        """Drop a device's topic once no asset needs it (a LoRaWAN topic serves all devices)."""
        if device in self.site.devices(kind):
            return
        if kind in (SourceKind.TTN, SourceKind.CHIRPSTACK) and self.site.devices(kind):
            return
        topic, _ = self._device_subscription(kind, device)
        self._unfollow_topics([(topic, True)])

    def _unfollow_topics(self, topics: Iterable[tuple[str, bool]]) -> None:
        for topic, _ in topics:
            unsubscribe = self._by_topic.pop(topic, None)
            if unsubscribe is None:
                continue
            unsubscribe()
            self._unsubscribe.remove(unsubscribe)
            self._topics.remove(topic)

    @callback
    def _watch_subscriptions(self) -> None:
        """Note when the broker has acknowledged every subscription of the site.

        Until then a device's message or a keypad entry would be dropped by the broker
        without a trace, so the site does not say it is ready before (see async_wait_live).
        """
        pending = set(self._topics)
        stops: list[CALLBACK_TYPE] = []

        @callback
        def stop_watching() -> None:
            for stop in stops:
                stop()
            stops.clear()

        @callback
        def acknowledged(topic: str) -> None:
            pending.discard(topic)
            if pending or self._live.is_set():
                return
            stop_watching()
            self._live.set()
            if self._late:
                LOGGER.info(
                    "%s: the broker confirmed its subscriptions after all", self.entry.title
                )

        for topic in self._topics:
            # The broker's grant is reported at the highest QoS anyone asked for on the
            # topic; another integration may have asked for 2.
            for qos in (1, 2):
                stops.append(
                    mqtt.async_on_subscribe_done(
                        self.hass, topic, qos, partial(acknowledged, topic)
                    )
                )
        self._unsubscribe.append(stop_watching)
        if not pending:
            self._live.set()

    async def async_wait_live(self) -> None:
        """Return once the broker has every subscription live, or after SUBSCRIBE_WAIT_S.

        A broker that is away must not keep the site (its bookings, its services) from
        loading: past the bound the site loads and says so once. (A connected broker that
        does not answer is given up on by MQTT itself after as long, and reported done.)
        """
        try:
            async with asyncio.timeout(SUBSCRIBE_WAIT_S):
                await self._live.wait()
        except TimeoutError:
            self._late = True
            LOGGER.warning(
                "%s: the broker has not confirmed its subscriptions after %s s; loading anyway, "
                "messages sent to the site before it does are lost",
                self.entry.title,
                SUBSCRIBE_WAIT_S,
            )

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
        if not isinstance(payload, _PAYLOAD_TYPES):
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
            self._unknown_device(kind, reading.device)
            return
        if not isinstance(reading, Reading):
            self._handle_locker(asset_id, reading)
            return
        if asset_id in self.site.locker_banks:
            # A bank's battery or other clusters: nothing a bank shows yet.
            stats.rejected["not_for_locker_bank"] += 1
            return
        if reading.rejected:
            self._count_rejected(asset_id, reading.rejected)
        now = dt_util.utcnow()
        stats.applied += 1
        if asset_id in self.site.masts:
            self.lighting.apply(asset_id, reading, now)
            return
        self.waste.apply(asset_id, reading, now)

    def _unknown_device(self, kind: str, device: str) -> None:
        # Wildcard subscriptions see every device of the network server; some are not ours.
        self.stats.unknown_devices += 1
        self.log.info(
            f"unknown:{kind}",
            "Ignoring %s messages from device %s: no asset of %s is bound to it",
            kind,
            device,
            self.entry.title,
        )

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
    def _notify_asset(self, asset_id: str, changed: Collection[str] | None = None) -> None:
        """Refresh an asset's entities: all of them, or those showing what `changed` names."""
        budget = self.budget
        if asset_id in budget.waiting:
            budget.quantity_seen(asset_id, changed)
        listeners = self._listeners.get(asset_id, ())
        if changed is None:
            for _, listener in listeners:
                listener()
            return
        for shows, listener in listeners:
            if not shows or shows in changed:
                listener()

    @callback
    def _tick(self, now: datetime) -> None:
        changed = self.waste.tick(now)
        if self.site.masts:
            self.lighting.tick(now)
            self._schedule_masts_save(False)  # the energy counters moved
            changed = True  # energy and savings move with every minute
        if changed:
            # After both: the site's entities show what the tick changed.
            self._site_refresh.async_schedule_call()

    @callback
    def _site_changed(self) -> None:
        self._site_refresh.async_schedule_call()

    # -- one asset at a time ----------------------------------------------------------------

    async def async_apply_changes(self) -> bool:
        """Follow added, changed and removed assets and changed options in place; False: reload.

        Only the changed assets' model, subscriptions and entities are touched; other assets'
        entities keep running. A changed topic root (the site's data) and assets reached
        through ZHA (attached at start) rebuild the site (see docs/architecture.md).
        """
        signature = config_signature(self.entry)
        if signature[0] != self.signature[0]:
            return False
        before = {sid: (kind, data) for sid, kind, data in self.signature[2]}
        after = {sid: (kind, data) for sid, kind, data in signature[2]}
        changed = [sid for sid in after.keys() | before.keys() if before.get(sid) != after.get(sid)]
        subentries = self.entry.subentries
        for sid in changed:
            if (before.get(sid) or after[sid])[0] not in IN_PLACE_KINDS:
                return False
            old = self.assets.get(sid)
            if (old and old.source_kind == "zha") or (
                sid in subentries and subentries[sid].data.get("source_kind") == "zha"
            ):
                return False  # ZHA devices are attached at start
        # The new state is recorded before anything is awaited: a change arriving meanwhile
        # is compared with it, not with what came before.
        options_changed = signature[1] != self.signature[1]
        self.signature = signature
        if options_changed:
            self._apply_options()
        rewrite: set[str] = set()
        masts_changed = new_banks = False
        for index, sid in enumerate(sorted(changed, key=lambda sid: sid in before)):
            if index and not index % CHANGES_BATCH:
                # Entities are added eagerly: thousands of new assets must not stall the
                # event loop in one go.
                await asyncio.sleep(0)
            kind = (before.get(sid) or after[sid])[0]
            if kind == SUBENTRY_LOCKER_BANK:
                if sid not in after:
                    await self._async_remove_bank(sid)
                    continue
                if not self._put_bank(sid, before.get(sid) is None):
                    return False  # a booked compartment dropped meanwhile: see restore
                new_banks = new_banks or sid not in before
                rewrite.add(sid)
                await self._async_follow_bank(sid)
                continue
            if kind == SUBENTRY_MAST:
                masts_changed = True
                if sid not in after:
                    self._remove_mast(sid)
                    continue
                follow = self._put_mast(sid, before.get(sid) is None)
            elif sid not in after:
                self._remove_container(sid)
                continue
            else:
                follow = self._put_container(sid, before.get(sid) is None)
            if sid in before:
                rewrite.add(sid)
            for device_kind, device in follow:
                await self._async_follow(device_kind, device)
        if masts_changed:
            await self._async_masts_changed()
        if new_banks:
            await async_write_device_registry(self.hass)
        self._rewrite_entities(rewrite)
        self._site_changed()
        self._schedule_save()
        return True

    def _apply_options(self) -> None:
        """Thresholds, the depot and the lighting profile are parameters: no rebuild.

        Booking options and the booking users are read where they are used.
        """
        self.site.settings = site_settings(self.hass, self.entry)
        self.waste.settings_changed()
        profile = site_profile(self.entry.options)
        for asset_id, mast in self.site.masts.items():
            mast.spec = mast_spec(self.assets[asset_id], profile, self.entry.options)
        if self.site.masts:
            self.lighting.reconcile()
            for asset_id in self.site.masts:
                self._notify_asset(asset_id)

    def _put_container(self, asset_id: str, new: bool) -> list[tuple[str, str]]:
        """Add or change one container; return the device to subscribe to, if any."""
        asset = asset_from_subentry(SUBENTRY_CONTAINER, self.entry.subentries[asset_id].data)
        old = self.assets.get(asset_id)
        self.assets[asset_id] = asset
        binding = (asset.source_kind, asset.device)
        if new or old is None:
            self.site.add_container(asset_id, Container(container_spec(asset)), *binding)
            self.waste.container_changed(asset_id)
            self.budget.asset_added(asset_id)
            return [binding]
        self.site.containers[asset_id].spec = container_spec(asset)
        self.waste.container_changed(asset_id)
        follow = []
        if (old.source_kind, old.device) != binding:
            self.site.rebind(asset_id, *binding)
            self._unfollow(old.source_kind, old.device)
            follow.append(binding)
        self._update_device(
            asset_id, WASTE_KIND_MODEL.get(asset.params.get("waste_kind", ""), "Waste container")
        )
        self._notify_asset(asset_id)
        return follow

    def _put_mast(self, asset_id: str, new: bool) -> list[tuple[str, str]]:
        """Add or change one mast; return the devices to subscribe to."""
        asset = asset_from_subentry(SUBENTRY_MAST, self.entry.subentries[asset_id].data)
        old = self.assets.get(asset_id)
        self.assets[asset_id] = asset
        spec = mast_spec(asset, site_profile(self.entry.options), self.entry.options)
        bindings = mast_bindings(asset)
        if new or old is None:
            self.site.add_mast(asset_id, Mast(spec), bindings)
            self.budget.asset_added(asset_id)
            return bindings
        self.site.change_mast(asset_id, spec, bindings)
        for kind, device in mast_bindings(old):
            self._unfollow(kind, device)
        path = spec.path
        self._update_device(asset_id, f"Lighting mast ({path})" if path else "Lighting mast")
        self.budget.asset_changed(asset_id)  # a motion or light sensor named now
        self._notify_asset(asset_id)
        return bindings

    def _remove_mast(self, asset_id: str) -> None:
        """Home Assistant removed the mast's entities and device with its subentry."""
        asset = self.assets.pop(asset_id)
        self.site.remove_mast(asset_id)
        self.budget.asset_removed(asset_id)
        self._listeners.pop(asset_id, None)
        self.lighting.mast_removed(asset_id)
        for kind, device in mast_bindings(asset):
            self._unfollow(kind, device)

    async def _async_masts_changed(self) -> None:
        """Masts came, changed or went: availability, the lighting's start, their levels."""
        self.lighting.masts_changed()
        for topic, handler in self.lighting.subscriptions():
            if topic not in self._by_topic:
                await self._async_subscribe_topic(topic, handler)
        if self.site.masts and not self.lighting.started:
            # The site's first mast: its energy sensors, and the lighting starts.
            self.budget.site_changed()
            self._when_subscribed(self.lighting.start)
        else:
            # A new mast is told its level; a changed one its new profile's. Masts whose
            # level did not change are not commanded.
            self.lighting.reconcile()

    def _put_bank(self, asset_id: str, new: bool) -> bool:
        """Add or change one locker bank; False if the change would drop a booking."""
        asset = asset_from_subentry(SUBENTRY_LOCKER_BANK, self.entry.subentries[asset_id].data)
        old = self.assets.get(asset_id)
        self.assets[asset_id] = asset
        spec = locker_bank_spec(asset)
        if new or old is None:
            # The device now, not when its entities are added: it is written to disk before
            # the change ends (see async_write_device_registry).
            dr.async_get(self.hass).async_get_or_create(
                config_entry_id=self.entry.entry_id,
                config_subentry_id=asset_id,
                identifiers={(DOMAIN, asset_id)},
                name=asset.name,
                manufacturer="City Operations",
                model="Locker bank",
                model_id=f"{asset.source_kind}:{asset.device}",
                via_device_id=self.site_device_id,
            )
            self.site.add_locker_bank(asset_id, LockerBank(spec), asset.source_kind, asset.device)
            self.lending.bank_added(asset_id)
            self.budget.asset_added(asset_id)
            self._start_lending_tick()
            return True
        try:
            dropped = self.site.locker_banks[asset_id].change_spec(spec)
        except LockerRefused:
            return False
        if (old.source_kind, old.device) != (asset.source_kind, asset.device):
            self.site.rebind(asset_id, asset.source_kind, asset.device)
            self._unfollow_topics(self.lending.topics_of(old))
        registry = er.async_get(self.hass)
        for number in dropped:
            for slot in COMPARTMENT_SLOTS:
                unique_id = f"{asset_id}_{number}_{slot.key}"
                if entity_id := registry.async_get_entity_id(slot.domain, DOMAIN, unique_id):
                    registry.async_remove(entity_id)
        self._update_device(asset_id, "Locker bank")
        self.budget.asset_changed(asset_id)  # compartments added
        self._notify_asset(asset_id)
        return True

    async def _async_remove_bank(self, asset_id: str) -> None:
        """Home Assistant removed the bank's entities and device with its subentry."""
        asset = self.assets.pop(asset_id)
        bank = self.site.remove_locker_bank(asset_id)
        self.budget.asset_removed(asset_id)
        self._listeners.pop(asset_id, None)
        self._unfollow_topics(self.lending.topics_of(asset))
        if self.lending.bank_removed(asset_id, asset, bank):
            await self.async_save_now()  # the kept bookings must survive a crash

    async def _async_follow_bank(self, asset_id: str) -> None:
        for topic, retained_ok in self.lending.topics_of(self.assets[asset_id]):
            if topic not in self._by_topic:
                handler = self._message_handler(SourceKind.NATIVE, self.lending.decode, retained_ok)
                await self._async_subscribe_topic(topic, handler)

    def _start_lending_tick(self) -> None:
        """Deadlines of the banks; from the site's start, or with its first bank."""
        if self._lending_tick is None and self.site.locker_banks:
            # Unlocks time out after 90 s and late item reports count for 60 s: a minute tick
            # would stretch both by up to a minute.
            self._lending_tick = async_track_time_interval(
                self.hass, self.lending.tick, LENDING_TICK
            )
            self._unsubscribe.append(self._lending_tick)

    def _update_device(self, asset_id: str, model: str) -> None:
        """A changed asset's device takes its new name, model and source."""
        asset = self.assets[asset_id]
        devices = dr.async_get(self.hass)
        device = devices.async_get_device_by_identifier((DOMAIN, asset_id), self.entry.entry_id)
        if device is not None:
            devices.async_update_device(
                device.id,
                name=asset.name,
                model=model,
                model_id=f"{asset.source_kind}:{asset.device}",
            )

    def _rewrite_entities(self, asset_ids: set[str]) -> None:
        """Write changed assets' entities again: where an asset stands is an attribute.

        Their values were refreshed already; this writes what does not count as a change of
        value (place, path, kind of waste). Only the changed assets' entities are written.
        """
        if not asset_ids:
            return
        for platform in entity_platform.async_get_platforms(self.hass, DOMAIN):
            if platform.config_entry is not self.entry:
                continue
            for entity in list(platform.entities.values()):
                if getattr(entity, "asset_id", None) in asset_ids and entity.hass is not None:
                    entity.async_write_ha_state()

    def _remove_container(self, asset_id: str) -> None:
        """Home Assistant removed the container's entities and device with its subentry."""
        asset = self.assets.pop(asset_id)
        self.site.remove_container(asset_id)
        self.waste.container_changed(asset_id)
        self.budget.asset_removed(asset_id)
        self._listeners.pop(asset_id, None)
        self._unfollow(asset.source_kind, asset.device)

    # -- listeners --------------------------------------------------------------------------

    @callback
    def async_add_listener(
        self, asset_id: str, listener: CALLBACK_TYPE, shows: str = ""
    ) -> CALLBACK_TYPE:
        """Call `listener` whenever the asset changes, or only when what it `shows` may have."""
        listeners = self._listeners
        # A tuple, replaced on change: a listener may remove itself (or another) while the
        # asset's listeners are being called.
        listeners[asset_id] = (*listeners.get(asset_id, ()), (shows, listener))

        def remove() -> None:
            rest = tuple(pair for pair in listeners.get(asset_id, ()) if pair[1] is not listener)
            if rest:
                listeners[asset_id] = rest
            else:
                listeners.pop(asset_id, None)

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

    @callback
    def _schedule_save(self) -> None:
        """Save the site's store at most SAVE_DELAY_S after its first unsaved change."""
        self._store.schedule(SAVE_DELAY_S)

    @callback
    def _schedule_readings_save(self, news: bool = False) -> None:
        """Save the containers' store: within seconds for news, else within minutes."""
        self._readings.schedule(SAVE_DELAY_S if news else READINGS_SAVE_DELAY_S)

    @callback
    def _schedule_masts_save(self, news: bool = False) -> None:
        """Save the masts' store: within seconds for news, else within minutes."""
        self._masts.schedule(SAVE_DELAY_S if news else MASTS_SAVE_DELAY_S)

    async def async_save_now(self) -> None:
        """Write the site's store at once: a booking or a lock-out must survive a crash."""
        await self._store.async_save()

    def _data_to_store(self) -> dict[str, Any]:
        return {**self.waste.to_store(), **self.lending.to_store()}
