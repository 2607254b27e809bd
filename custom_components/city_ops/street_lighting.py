"""The site's park lighting at run time: profile in, boosts and reconciliation, commands out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, time, timedelta
import json
from operator import methodcaller
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.sun import is_up
from homeassistant.util import dt as dt_util

from . import delivery
from .const import (
    CONF_BASE_LEVEL,
    CONF_BOOST_LEVEL,
    CONF_CORRIDOR_HOPS,
    CONF_HOLD_S,
    CONF_LUX_THRESHOLD,
    CONF_NIGHT_END,
    CONF_NIGHT_LEVEL,
    CONF_NIGHT_START,
    CONF_TRANSITION_DOWN_S,
    CONF_TRANSITION_UP_S,
    CONF_WARM_KELVIN,
    CONF_ZIGBEE2MQTT_BASE,
    DEFAULT_ZIGBEE2MQTT_BASE,
    LOGGER,
)
from .model.assets import Asset
from .model.lighting import (
    Command,
    LightingProfile,
    MastSpec,
    mast_status_from_dict,
    mast_status_to_dict,
)
from .sources import zigbee2mqtt

if TYPE_CHECKING:
    from .model.site import Site
    from .sources.zha import ZhaDevices

HAND_OVERRIDE = timedelta(hours=1)
LEVEL_TO_BRIGHTNESS = 254 / 100


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
    )


def mast_spec(asset: Asset, profile: LightingProfile) -> MastSpec:
    """Build the model's spec from a stored asset."""
    params = asset.params
    overrides = {key: params.get(key) for key in ("base_level", "boost_level", "hold_s")}
    return MastSpec(
        name=asset.name,
        latitude=asset.latitude,
        longitude=asset.longitude,
        path=str(params.get("path") or ""),
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


class ParkLighting:
    """Boosts, reconciliation to the profile and the commands that follow from them."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        site: Site,
        assets: Mapping[str, Asset],
        notify: Callable[[str], None],
    ) -> None:
        """Work on the site's masts; `notify(asset_id)` refreshes that mast's entities."""
        self.hass = hass
        self.site = site
        self.assets = assets
        self._notify = notify
        self._z2m_base = entry.data.get(CONF_ZIGBEE2MQTT_BASE, DEFAULT_ZIGBEE2MQTT_BASE)
        self._timer: CALLBACK_TYPE | None = None
        self._timer_at: datetime | None = None
        self.zha: ZhaDevices | None = None
        self.commands_sent = 0
        self.command_errors = 0

    # -- state --------------------------------------------------------------------------------

    def restore(self, stored: Mapping[str, Any]) -> None:
        """Bring back boosts, commanded levels and energy after a restart."""
        for asset_id, data in (stored.get("masts") or {}).items():
            mast = self.site.masts.get(asset_id)
            if mast is not None and isinstance(data, Mapping):
                mast.status = mast_status_from_dict(data)
        lighting = self.site.lighting
        reference = stored.get("lighting_reference_kwh")
        if isinstance(reference, int | float) and not isinstance(reference, bool):
            lighting.reference_kwh = float(reference)

    def to_store(self) -> dict[str, Any]:
        """What survives a restart."""
        return {
            "masts": {
                asset_id: mast_status_to_dict(mast.status)
                for asset_id, mast in self.site.masts.items()
            },
            "lighting_reference_kwh": self.site.lighting.reference_kwh,
        }

    # -- time ---------------------------------------------------------------------------------

    def sun_down(self) -> bool:
        """Whether the sun is below the horizon at the site (HA's configured location)."""
        return not is_up(self.hass)

    @callback
    def reconcile(self, now: datetime | None = None, names: Iterable[str] | None = None) -> None:
        """Send every mast (or the named ones) to what the profile wants now."""
        now = now or dt_util.utcnow()
        local = dt_util.as_local(now).time()
        commands = self.site.lighting.reconcile(now, local, self.sun_down(), names)
        self._send(commands)
        if names is None:
            # Reconciling named masts moves no expiry; only a full pass looks for the next one
            # (an O(masts) scan that must not run on every motion message).
            self._schedule_expiry(now)

    @callback
    def tick(self, now: datetime) -> None:
        """Minute tick: energy, dusk/dawn and the night window, expired boosts."""
        self.site.lighting.tick(now, self.sun_down())
        self.reconcile(now)
        for asset_id in self.site.masts:
            self._notify(asset_id)

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
        self.reconcile(now)

    def stop(self) -> None:
        """Cancel the boost timer and detach from ZHA."""
        if self._timer is not None:
            self._timer()
            self._timer = None
        if self.zha is not None:
            self.zha.async_stop()

    # -- actions ------------------------------------------------------------------------------

    @callback
    def boost(
        self, asset_ids: Iterable[str], hops: int | None = None, hold_s: float | None = None
    ) -> list[str]:
        """Boost masts and their corridor; only masts not already at boost get a command."""
        now = dt_util.utcnow()
        names = [
            self.site.masts[asset_id].spec.name
            for asset_id in asset_ids
            if asset_id in self.site.masts
        ]
        touched = self.site.lighting.boost(names, now, hops, hold_s)
        self.reconcile(now, touched)
        masts = self.site.lighting.masts
        self._expire_by(
            min((masts[name].status.boost_until for name in touched), default=None, key=_when),
            now,
        )
        return touched

    @callback
    def set_by_hand(self, asset_id: str, level: float, transition_s: float | None) -> None:
        """A person switched or dimmed the lamp: that wins for a while, then the profile."""
        now = dt_util.utcnow()
        mast = self.site.masts[asset_id]
        mast.override(level, now, HAND_OVERRIDE)
        mast.accumulate(now)
        mast.status.commanded_level = level
        mast.status.commanded_kelvin = 0
        mast.status.commanded_at = now
        profile = mast.spec.profile
        transition = profile.transition_up_s if transition_s is None else transition_s
        self._send([Command(mast.spec.name, level, transition)])
        self._expire_by(mast.status.override_until, now)

    # -- wire ---------------------------------------------------------------------------------

    def _send(self, commands: list[Command]) -> None:
        # Every command goes out before any entity is refreshed: the last lamp of a corridor
        # must not wait for the state writes of the first ones.
        sent = []
        for command in commands:
            asset_id = self.site.mast_ids[command.mast]
            asset = self.assets[asset_id]
            self.commands_sent += 1
            if asset.source_kind == "zha":
                set_level = methodcaller(
                    "async_set_level", asset.device, command.level, command.transition_s
                )
                self.hass.async_create_task(
                    delivery.async_zha(self.zha, asset.device, set_level, self._failed),
                    eager_start=True,
                )
            else:
                self._publish_z2m(asset.device, command)
            sent.append(asset_id)
        for asset_id in sent:
            self._notify(asset_id)

    def _publish_z2m(self, device: str, command: Command) -> None:
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
                self._failed,
            ),
            eager_start=True,
        )

    def _failed(self, target: str, reason: object) -> None:
        self.command_errors += 1  # the lamp keeps its level
        LOGGER.warning("Command to %s failed: %s", target, reason)
