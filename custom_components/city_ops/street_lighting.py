"""The site's park lighting at run time: profile in, boosts and reconciliation, commands out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, time, timedelta
import json
from operator import methodcaller
from typing import TYPE_CHECKING, Any

from homeassistant.components import mqtt
from homeassistant.components.mqtt.models import ReceiveMessage
from homeassistant.const import SUN_EVENT_SUNRISE, SUN_EVENT_SUNSET
from homeassistant.core import CALLBACK_TYPE, Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import (
    async_track_point_in_utc_time,
    async_track_state_change_event,
)
from homeassistant.helpers.sun import get_astral_event_next, is_up
from homeassistant.util import dt as dt_util

from . import delivery
from .const import (
    CONF_BASE_LEVEL,
    CONF_BEHIND_M,
    CONF_BOOST_LEVEL,
    CONF_CORRIDOR_HOPS,
    CONF_HOLD_S,
    CONF_LEAD_M,
    CONF_LEAD_S,
    CONF_LUX_THRESHOLD,
    CONF_NIGHT_END,
    CONF_NIGHT_LEVEL,
    CONF_NIGHT_START,
    CONF_PATH_PROFILES,
    CONF_TRANSITION_DOWN_S,
    CONF_TRANSITION_UP_S,
    CONF_WARM_KELVIN,
    CONF_ZIGBEE2MQTT_BASE,
    DEFAULT_ZIGBEE2MQTT_BASE,
    DOMAIN,
    EVENT_LAMP_FAULT,
    LOGGER,
    PATH_PROFILE_KEYS,
)
from .model.assets import Asset
from .model.lighting import (
    REPAIR_AFTER,
    Command,
    FaultChange,
    LightingProfile,
    Mast,
    MastSpec,
    follow_from_dict,
    follow_to_dict,
    mast_status_from_dict,
    mast_status_to_dict,
)
from .sources import zigbee2mqtt
from .sources.reading import DecodeError, Reading
from .throttled_log import ThrottledLog

if TYPE_CHECKING:
    from .model.site import Site
    from .runtime import CityOpsConfigEntry
    from .sources.zha import ZhaDevices

HAND_OVERRIDE = timedelta(hours=1)
LEVEL_TO_BRIGHTNESS = 254 / 100
# Home Assistant's sun entity and its states, read from the state machine: the sun integration
# is optional (and waiting for it would slow every site's setup).
SUN_ENTITY = "sun.sun"
STATE_ABOVE_HORIZON = "above_horizon"
STATE_BELOW_HORIZON = "below_horizon"
# A luminaire's answer this far from the level it was told did not take the command.
LEVEL_MISMATCH = 2.0


def _time(value: Any, default: time) -> time:
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            return default
    return default


def site_profile(options: Mapping[str, Any]) -> LightingProfile:
    """The site's lighting profile from its options (defaults where unset)."""
    default = LightingProfile()
    return LightingProfile(
        base_level=float(options.get(CONF_BASE_LEVEL, default.base_level)),
        boost_level=float(options.get(CONF_BOOST_LEVEL, default.boost_level)),
        hold_s=int(options.get(CONF_HOLD_S, default.hold_s)),
        corridor_hops=int(options.get(CONF_CORRIDOR_HOPS, default.corridor_hops)),
        transition_up_s=float(options.get(CONF_TRANSITION_UP_S, default.transition_up_s)),
        transition_down_s=float(options.get(CONF_TRANSITION_DOWN_S, default.transition_down_s)),
        night_start=_time(options.get(CONF_NIGHT_START), default.night_start),
        night_end=_time(options.get(CONF_NIGHT_END), default.night_end),
        night_level=float(options.get(CONF_NIGHT_LEVEL, default.night_level)),
        warm_kelvin=int(options.get(CONF_WARM_KELVIN, default.warm_kelvin)),
        lux_threshold=float(options.get(CONF_LUX_THRESHOLD, default.lux_threshold)),
        lead_m=float(options.get(CONF_LEAD_M, default.lead_m)),
        lead_s=float(options.get(CONF_LEAD_S, default.lead_s)),
        behind_m=float(options.get(CONF_BEHIND_M, default.behind_m)),
    )


def path_overrides(options: Mapping[str, Any], path: str) -> dict[str, Any]:
    """A path's own profile values from the site's options (unknown keys are ignored)."""
    paths = options.get(CONF_PATH_PROFILES)
    values = paths.get(path) if isinstance(paths, Mapping) and path else None
    if not isinstance(values, Mapping):
        return {}
    whole = ("hold_s", "corridor_hops")
    return {
        key: int(value) if key in whole else float(value)
        for key, value in values.items()
        if key in PATH_PROFILE_KEYS
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and value >= 0
    }


def mast_spec(
    asset: Asset, profile: LightingProfile, options: Mapping[str, Any] | None = None
) -> MastSpec:
    """Build the model's spec from a stored asset: site profile, then its path's, then its own."""
    params = asset.params
    path = str(params.get("path") or "")
    profile = profile.with_overrides(path_overrides(options or {}, path))
    overrides = {key: params.get(key) for key in ("base_level", "boost_level", "hold_s")}
    return MastSpec(
        name=asset.name,
        latitude=asset.latitude,
        longitude=asset.longitude,
        path=path,
        rated_power_w=float(params.get("rated_power_w", 40)),
        neighbours=tuple(params.get("neighbours") or ()),
        profile=profile.with_overrides(overrides),
    )


def mast_bindings(asset: Asset) -> list[tuple[str, str]]:
    """Every device that reports for a mast: the luminaire and optional separate sensors."""
    bindings = [(asset.source_kind, asset.device)]
    for key in ("motion_source", "lux_source"):
        source = asset.params.get(key)
        if isinstance(source, Mapping):
            bindings.append((str(source["kind"]), str(source["device"])))
    return bindings


def _when(value: datetime | None) -> datetime:
    return value or datetime.max.replace(tzinfo=dt_util.UTC)


type MessageHandler = Callable[[ReceiveMessage], None]
type WhenSubscribed = Callable[[Callable[[], None]], None]


class ParkLighting:
    """Boosts, reconciliation, faults and the commands that follow from them."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: CityOpsConfigEntry,
        site: Site,
        assets: Mapping[str, Asset],
        notify: Callable[[str], None],
        *,
        when_subscribed: WhenSubscribed | None = None,
        save: Callable[[bool], None] | None = None,
    ) -> None:
        """Work on the site's masts; `notify(asset_id)` refreshes that mast's entities.

        `when_subscribed(then)` calls `then` once the broker acknowledged the site's
        subscriptions; after a reconnect, masts are commanded again only then. `save(news)`
        schedules a save of the masts' state: soon for news (a fault, a mast gone or back,
        a level set by hand), else within minutes (counters, levels the profile sets again
        after a restart anyway).
        """
        self.hass = hass
        self.entry = entry
        self.site = site
        self.assets = assets
        self._notify = notify
        self._save = save or (lambda news: None)
        self._z2m_base = entry.data.get(CONF_ZIGBEE2MQTT_BASE, DEFAULT_ZIGBEE2MQTT_BASE)
        self._timer: CALLBACK_TYPE | None = None
        self._timer_at: datetime | None = None
        # Sun down, and until when that holds (None: until the sun entity changes).
        self._sun: tuple[bool, datetime | None] | None = None
        self._when_subscribed = when_subscribed
        self._listeners: list[CALLBACK_TYPE] = []
        self._by_device = {
            self.assets[asset_id].device: asset_id
            for asset_id in site.masts
            if self.assets[asset_id].source_kind == "zigbee2mqtt"
        }
        self.zha: ZhaDevices | None = None
        # No command before the subscriptions that hear the answers are live (see start),
        # and none to Zigbee2MQTT while the broker is gone or has not yet acknowledged them
        # again after a reconnect: those masts are told their level once it has.
        self.started = False
        self.mqtt_live = True
        self.log = ThrottledLog(LOGGER)
        self.commands_sent = 0
        self.command_errors = 0
        self.state_requests = 0
        self.availability_rejected = 0

    # -- state --------------------------------------------------------------------------------

    def restore(self, stored: Mapping[str, Any]) -> None:
        """Bring back boosts, commanded levels, faults and energy after a restart."""
        for asset_id, data in (stored.get("masts") or {}).items():
            mast = self.site.masts.get(asset_id)
            if mast is not None and isinstance(data, Mapping):
                mast.status = mast_status_from_dict(data)
        since = stored.get("lighting_counting_since")
        if isinstance(since, str):
            self.site.lighting.counting_since = dt_util.parse_datetime(since)
        follows = stored.get("follows")
        for asset_id, data in (follows if isinstance(follows, Mapping) else {}).items():
            mast = self.site.masts.get(asset_id)
            follow = follow_from_dict(data)
            if mast is not None and follow is not None and mast.status.motion is True:
                self.site.lighting.follows[mast.spec.name] = follow

    def to_store(self) -> dict[str, Any]:
        """What survives a restart."""
        since = self.site.lighting.counting_since
        return {
            "masts": {
                asset_id: mast_status_to_dict(mast.status)
                for asset_id, mast in self.site.masts.items()
            },
            "lighting_counting_since": since.isoformat() if since else None,
            # Boosts held while motion goes on: a restart keeps holding them.
            "follows": {
                self.site.mast_ids[name]: follow_to_dict(follow)
                for name, follow in self.site.lighting.follows.items()
                if name in self.site.mast_ids
            },
        }

    # -- time ---------------------------------------------------------------------------------

    def sun_down(self, now: datetime | None = None) -> bool:
        """Whether the sun is below the horizon at the site.

        Home Assistant's `sun.sun` says so where the sun integration runs (followed as it
        changes); else the sun's position, computed once per sunrise/sunset: it costs about
        50 µs, and a motion message must not pay it each time.
        """
        now = now or dt_util.utcnow()
        cached = self._sun
        if cached is not None and (cached[1] is None or now < cached[1]):
            return cached[0]
        sun = self.hass.states.get(SUN_ENTITY)
        if sun is not None and sun.state in (STATE_ABOVE_HORIZON, STATE_BELOW_HORIZON):
            down = sun.state == STATE_BELOW_HORIZON
            if self._listeners:  # followed from now on: valid until it changes
                self._sun = (down, None)
            return down
        down = not is_up(self.hass, now)
        change = get_astral_event_next(
            self.hass, SUN_EVENT_SUNSET if not down else SUN_EVENT_SUNRISE, now
        )
        self._sun = (down, change or now + timedelta(minutes=1))
        return down

    @callback
    def _sun_changed(self, event: Event[EventStateChangedData]) -> None:
        """Dusk or dawn by `sun.sun`: every mast to its level, every light's `dark` anew."""
        old, new = event.data["old_state"], event.data["new_state"]
        if old is not None and new is not None and old.state == new.state:
            return  # the sun's position attributes move every few minutes
        self._sun = None
        now = dt_util.utcnow()
        sun_down = self.sun_down(now)
        for mast in self.site.masts.values():
            mast.accumulate(now, mast.is_dark(sun_down))
        self.reconcile(now)
        for asset_id in self.site.masts:
            self._notify(asset_id)

    @callback
    def start(self) -> None:
        """The site hears its luminaires now: send every mast what the profile wants."""
        self.started = True
        if not self._listeners:
            self._listeners.append(
                async_track_state_change_event(self.hass, SUN_ENTITY, self._sun_changed)
            )
            if self._by_device:
                self._listeners.append(
                    mqtt.async_subscribe_connection_status(self.hass, self._connection)
                )
        self._sun = None  # from now on `sun.sun` is followed, where it exists
        self.reconcile()

    @callback
    def _connection(self, connected: bool) -> None:
        """The broker went away or came back (Home Assistant resubscribes by itself)."""
        if not connected:
            self.mqtt_live = False
            return
        if self.mqtt_live or self._when_subscribed is None:
            self.mqtt_live = True
            return
        # Called while the MQTT client is still connecting: its resubscriptions are queued
        # right after this, and waiting must begin once they are.
        when_subscribed = self._when_subscribed
        self.hass.loop.call_soon(when_subscribed, self._resume)

    @callback
    def _resume(self) -> None:
        """Back on the broker and heard again: what the masts missed, and ask the silent."""
        if not delivery.mqtt_connected(self.hass):
            return  # gone again before it settled; the next connection resumes
        self.mqtt_live = True
        now = dt_util.utcnow()
        LOGGER.info("%s: the broker is back; commanding the masts again", self.entry.title)
        self.reconcile(now)
        self._ask_unanswered(now)

    @callback
    def reconcile(self, now: datetime | None = None, names: Iterable[str] | None = None) -> None:
        """Send every mast (or the named ones) to what the profile wants now."""
        if not self.started:
            return  # boosts wait in the model; `start` sends what they want
        now = now or dt_util.utcnow()
        local = dt_util.as_local(now).time()
        commands = self.site.lighting.reconcile(now, local, self.sun_down(now), names)
        self._send(commands)
        if names is None:
            # Reconciling named masts moves no expiry; only a full pass looks for the next one
            # (an O(masts) scan that must not run on every motion message).
            self._schedule_expiry(now)

    @callback
    def tick(self, now: datetime) -> None:
        """Minute tick: energy, dusk/dawn and the night window, expired boosts, faults."""
        sun_down = self.sun_down(now)
        self.site.lighting.tick(now, sun_down)
        self.reconcile(now)
        # Judged before asking again: a question just sent has had no time for its answer.
        for asset_id, mast in self.site.masts.items():
            self._judge(asset_id, mast, now, sun_down)
            self._notify(asset_id)
        self._ask_unanswered(now)

    def _schedule_expiry(self, now: datetime) -> None:
        if self._timer is not None:
            self._timer()
            self._timer = None
        self._timer_at = self.site.lighting.next_expiry(now)
        if self._timer_at is not None:
            self._timer = async_track_point_in_utc_time(self.hass, self._expired, self._timer_at)

    def _expire_by(self, until: datetime | None, now: datetime) -> None:
        """Make sure the timer fires no later than `until` (boosts never shorten)."""
        if until is not None and (self._timer_at is None or until < self._timer_at):
            self._schedule_expiry(now)

    @callback
    def _expired(self, now: datetime) -> None:
        self._timer = None
        self._timer_at = None
        self.site.lighting.renew(now)  # before the levels: a held boost must not dip
        self.reconcile(now)

    def stop(self) -> None:
        """Cancel the timers and listeners and detach from ZHA."""
        for unsubscribe in self._listeners:
            unsubscribe()
        self._listeners.clear()
        if self._timer is not None:
            self._timer()
            self._timer = None
        if self.zha is not None:
            self.zha.async_stop()

    # -- masts added, changed, removed ---------------------------------------------------------

    @callback
    def masts_changed(self) -> None:
        """Masts were added, changed or removed in place: follow their luminaires."""
        had_z2m = bool(self._by_device)
        self._by_device = {
            self.assets[asset_id].device: asset_id
            for asset_id in self.site.masts
            if self.assets[asset_id].source_kind == "zigbee2mqtt"
        }
        if self.started and self._by_device and not had_z2m:
            self._listeners.append(
                mqtt.async_subscribe_connection_status(self.hass, self._connection)
            )

    @callback
    def mast_removed(self, asset_id: str) -> None:
        """A removed mast leaves no repair issue behind."""
        ir.async_delete_issue(self.hass, DOMAIN, f"lamp_fault_{asset_id}")

    # -- what the masts say -------------------------------------------------------------------

    @callback
    def apply(self, asset_id: str, reading: Reading, now: datetime) -> None:
        """Fold a report into a mast; a new motion is a detection, a luminaire report judged."""
        mast = self.site.masts[asset_id]
        status = mast.status
        was_moving = status.motion is True
        # An answer to the question after a command went unanswered: the command was lost.
        lost = (
            status.unconfirmed_since is not None
            and status.reasked_at is not None
            and status.reasked_at >= status.unconfirmed_since
        )
        mast.apply(reading, now)
        if lost and (reading.on is not None or reading.brightness is not None):
            self._resend_if_lost(mast)
        if reading.occupancy is True and not was_moving:
            self.site.lighting.detect(mast.spec.name, now)
        elif reading.occupancy is False and was_moving:
            self._motion_ended(mast, now)
        if reading.illuminance_lx is not None:
            # A light sensor can make the mast dark (or not) between minute ticks.
            self.reconcile(now, [mast.spec.name])
        if reading.on is not None or reading.brightness is not None or reading.power_w is not None:
            self._judge(asset_id, mast, now, self.sun_down(now))
        self._notify(asset_id)
        self._save(False)

    def _resend_if_lost(self, mast: Mast) -> None:
        """A luminaire that answers the question at another level is told its level again."""
        commanded = mast.status.commanded_level
        if commanded is not None and abs(mast.level() - commanded) > LEVEL_MISMATCH:
            LOGGER.info(
                "%s is at %s %% instead of %s %%; telling it again",
                mast.spec.name,
                mast.level(),
                commanded,
            )
            mast.status.commanded_level = None
            self.reconcile(names=[mast.spec.name])

    def subscriptions(self) -> list[tuple[str, MessageHandler]]:
        """What lighting listens to besides the devices' state: Zigbee2MQTT availability."""
        if not self._by_device:
            return []
        return [(zigbee2mqtt.availability_topics(self._z2m_base), self._availability)]

    @callback
    def _availability(self, message: ReceiveMessage) -> None:
        try:
            device, online = zigbee2mqtt.decode_availability(
                self._z2m_base,
                message.topic,
                payload if isinstance(payload := message.payload, str) else bytes(payload),
            )
        except DecodeError:
            self.availability_rejected += 1
            return
        asset_id = self._by_device.get(device)
        if asset_id is None:
            return  # another device of the Zigbee network
        mast = self.site.masts[asset_id]
        now = dt_util.utcnow()
        if not mast.set_online(online, now):
            return
        if online:
            LOGGER.info("%s is reachable again", mast.spec.name)
            # What it missed while away: its level now, and its state to confirm it.
            mast.status.commanded_level = None
            self.reconcile(now, [mast.spec.name])
        else:
            LOGGER.warning("%s is offline (Zigbee2MQTT); marking it unavailable", mast.spec.name)
            self._motion_ended(mast, now)  # a sensor that cannot be heard holds no boost
        self._judge(asset_id, mast, now, self.sun_down(now))
        self._notify(asset_id)
        self._save(True)

    def _judge(self, asset_id: str, mast: Mast, now: datetime, sun_down: bool) -> None:
        """Raise and clear faults: an event for each, a repair issue after a day."""
        for change in mast.check_faults(now, sun_down):
            self._announce(asset_id, change)
            self._save(True)
        issue_id = f"lamp_fault_{asset_id}"
        fault = mast.fault()
        if fault is not None and now - fault[1] >= REPAIR_AFTER:
            kind, since = fault
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                is_persistent=False,
                severity=ir.IssueSeverity.WARNING,
                # One text per kind: a placeholder could not be translated.
                translation_key=f"lamp_fault_{kind.value}",
                translation_placeholders={
                    "mast": mast.spec.name,
                    "since": dt_util.as_local(since).strftime("%Y-%m-%d %H:%M"),
                },
            )
        elif fault is None and mast.status.faults == {} and self._had_issue(issue_id):
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)

    def _had_issue(self, issue_id: str) -> bool:
        return ir.async_get(self.hass).async_get_issue(DOMAIN, issue_id) is not None

    def _announce(self, asset_id: str, change: FaultChange) -> None:
        if change.active:
            LOGGER.warning("%s: %s since %s", change.mast, change.kind.value, change.since)
        else:
            LOGGER.info("%s: %s cleared", change.mast, change.kind.value)
        self.hass.bus.async_fire(
            EVENT_LAMP_FAULT,
            {
                "config_entry_id": self.entry.entry_id,
                "asset_id": asset_id,
                "name": change.mast,
                "kind": change.kind.value,
                "since": change.since.isoformat(),
                "active": change.active,
            },
        )

    # -- actions ------------------------------------------------------------------------------

    @callback
    def boost(
        self,
        asset_ids: Iterable[str],
        hops: int | None = None,
        hold_s: float | None = None,
        *,
        when_dark: bool = False,
        follow_motion: timedelta | None = None,
    ) -> list[str]:
        """Boost masts and what they light (ahead of a walker, else the corridor).

        `when_dark`: only the masts where it is dark (their light sensor, else the sun).
        `follow_motion`: hold each boost while the mast's motion goes on, at most this long
        (see `Lighting.boost`).
        """
        now = dt_util.utcnow()
        masts = self.site.masts
        chosen = [masts[asset_id] for asset_id in asset_ids if asset_id in masts]
        if when_dark and chosen:
            sun_down = self.sun_down(now)
            chosen = [mast for mast in chosen if mast.is_dark(sun_down)]
        names = [mast.spec.name for mast in chosen]
        lighting = self.site.lighting
        touched = lighting.boost(
            names, now, hops, hold_s, None if follow_motion is None else now + follow_motion
        )
        renewals = [follow.renew_at for name in names if (follow := lighting.follows.get(name))]
        self._boosted(touched, now, renewals)
        return touched

    def _motion_ended(self, mast: Mast, now: datetime) -> None:
        """The motion holding a boost ended: the hold counts from now."""
        self._boosted(self.site.lighting.motion_ended(mast.spec.name, now), now)

    def _boosted(
        self, touched: list[str], now: datetime, renewals: Iterable[datetime] = ()
    ) -> None:
        """Send the boosted masts their level; the timer fires by the first end or renewal."""
        if not touched:
            return  # nothing boosted, so nothing followed either
        self.reconcile(now, touched)
        by_name = self.site.lighting.masts
        ends = [by_name[name].status.boost_until for name in touched]
        ends.extend(renewals)
        self._expire_by(min(ends, default=None, key=_when), now)

    @callback
    def set_by_hand(self, asset_id: str, level: float, transition_s: float | None) -> None:
        """A person switched or dimmed the lamp: that wins for a while, then the profile."""
        now = dt_util.utcnow()
        mast = self.site.masts[asset_id]
        mast.override(level, now, HAND_OVERRIDE)
        command = self.site.lighting.command(mast, level, 0, now)
        if transition_s is not None:
            command = Command(command.mast, level, transition_s)
        self._send([command])
        self._expire_by(mast.status.override_until, now)
        self._save(True)  # a person's choice holds for an hour, across a restart too

    # -- wire ---------------------------------------------------------------------------------

    def _send(self, commands: list[Command]) -> None:
        # Every command goes out before any entity is refreshed: the last lamp of a corridor
        # must not wait for the state writes of the first ones.
        sent = []
        for command in commands:
            asset_id = self.site.mast_ids[command.mast]
            asset = self.assets[asset_id]
            if asset.source_kind == "zha":
                self.commands_sent += 1
                set_level = methodcaller(
                    "async_set_level", asset.device, command.level, command.transition_s
                )
                self.hass.async_create_task(
                    delivery.async_zha(
                        self.zha, asset.device, set_level, self._failed_for(asset_id)
                    ),
                    eager_start=True,
                )
            elif self.mqtt_live:
                self.commands_sent += 1
                self._publish_z2m(asset_id, asset.device, command)
            else:
                # Nobody would hear the answer: the mast is told once the broker is back.
                self.site.masts[asset_id].status.commanded_level = None
            sent.append(asset_id)
        for asset_id in sent:
            self._notify(asset_id)

    def _ask_unanswered(self, now: datetime) -> None:
        """Ask luminaires that left a command unanswered for their state (Zigbee2MQTT `/get`).

        A lost answer is not a fault: only a luminaire that stays silent when asked is.
        Runs on the minute tick; a fault needs FAULT_GRACE of silence anyway. Nothing is asked
        while the broker is gone: the question could not leave, and silence then proves nothing.
        """
        if not self.mqtt_live:
            return
        for asset_id, mast in self.site.masts.items():
            if mast.status.unconfirmed_since is None:
                continue
            asset = self.assets[asset_id]
            if asset.source_kind != "zigbee2mqtt":
                continue
            if mast.needs_reask(now):
                mast.reasked(now)
                self.state_requests += 1
                # A question, not a command: nothing waits for it to leave.
                self.hass.async_create_background_task(
                    delivery.async_publish(
                        self.hass,
                        zigbee2mqtt.request_topic(self._z2m_base, asset.device),
                        zigbee2mqtt.STATE_REQUEST,
                        0,
                        self._failed_for(None),
                    ),
                    f"city_ops state request {asset.device}",
                    eager_start=True,
                )

    def _publish_z2m(self, asset_id: str, device: str, command: Command) -> None:
        payload: dict[str, Any] = {"transition": command.transition_s}
        if command.level <= 0:
            payload["state"] = "OFF"
        else:
            payload["state"] = "ON"
            payload["brightness"] = max(1, round(command.level * LEVEL_TO_BRIGHTNESS))
            if command.kelvin:
                payload["color_temp"] = round(1_000_000 / command.kelvin)
        self.hass.async_create_task(
            delivery.async_publish(
                self.hass,
                zigbee2mqtt.command_topic(self._z2m_base, device),
                json.dumps(payload, separators=(",", ":")),
                0,
                self._failed_for(asset_id),
            ),
            eager_start=True,
        )

    def _failed_for(self, asset_id: str | None) -> Callable[[str, object], None]:
        """What to do when a command to a mast (or a question, `None`) does not get out."""

        def failed(target: str, reason: object) -> None:
            self.command_errors += 1
            if asset_id is not None and asset_id in self.site.masts:
                # The lamp keeps its level; the next reconcile tells it again.
                self.site.masts[asset_id].status.commanded_level = None
            self.log.warning(f"command:{asset_id}", "Command to %s failed: %s", target, reason)

        return failed
