"""Zigbee devices reached through ZHA: zigpy attribute events in, LevelControl commands out.

The only source module that touches Home Assistant (ZHA's gateway lives in `hass.data`) and
zigpy. Neither is imported when the module loads (zigpy only once ZHA runs, Home Assistant only
for type checking): a site without ZHA, or pure code wanting `ieee_key`, must still load it.

Values are scaled the way ZHA's own sensors scale them, so our entities and ZHA's agree:
power = active_power x (ac_power_multiplier or power_multiplier or 1)
        / (ac_power_divisor or power_divisor or 1), in W;
energy = current_summ_delivered x (multiplier or 1) / (divisor or 1), in kWh (unit_of_measure
0x00/0x80; another unit is rejected, an unknown one is taken as kWh like ZHA does);
illuminance = 10^((measured_value - 1) / 10000) lx, 0 meaning too dark to measure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
import logging
import math
from typing import TYPE_CHECKING, Any, Final

from .reading import Reading

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from zigpy.application import ControllerApplication
    from zigpy.device import Device
    from zigpy.zcl import Cluster

_LOGGER = logging.getLogger(__name__)

ZHA_DOMAIN: Final = "zha"  # also ZHA's key in hass.data (homeassistant.components.zha.const)

# ZCL cluster ids (Zigbee Cluster Library, fixed by the specification).
POWER_CONFIGURATION: Final = 0x0001
ON_OFF: Final = 0x0006
LEVEL_CONTROL: Final = 0x0008
ILLUMINANCE_MEASUREMENT: Final = 0x0400
OCCUPANCY_SENSING: Final = 0x0406
ELECTRICAL_MEASUREMENT: Final = 0x0B04
METERING: Final = 0x0702
WATCHED_CLUSTERS: Final = frozenset(
    {
        POWER_CONFIGURATION,
        ON_OFF,
        LEVEL_CONTROL,
        ILLUMINANCE_MEASUREMENT,
        OCCUPANCY_SENSING,
        ELECTRICAL_MEASUREMENT,
        METERING,
    }
)
# zigpy 2.x emits reports, reads and quirk-transformed updates as separate events and no
# longer calls the legacy `attribute_updated` listener for reports; ZHA's sensors take all three.
ATTRIBUTE_EVENTS: Final = ("attribute_report", "attribute_read", "attribute_updated")

# Same plausibility bounds as the JSON decoders in reading.py.
MAX_ILLUMINANCE_LX: Final = 200_000.0
MAX_POWER_W: Final = 100_000.0
MAX_ENERGY_KWH: Final = 10_000_000.0
KWH_UNITS: Final = frozenset({0x00, 0x80})  # MeteringUnitofMeasure kWh, binary and BCD
MAX_TRANSITION_S: Final = 6553.4  # transition_time is uint16 tenths; 0xFFFF means "default"


class ZhaCommandError(Exception):
    """A command that did not reach the device; `reason` is a short machine-readable key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        """Keep the reason machine-readable and the detail for the log line."""
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def ieee_key(text: object) -> str | None:
    """Return an IEEE address as zigpy prints it (`00:0d:6f:...`), or None if it is not one."""
    if not isinstance(text, str):
        return None
    digits = text.strip().lower().removeprefix("0x").replace(":", "").replace("-", "")
    if len(digits) != 16 or any(c not in "0123456789abcdef" for c in digits):
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 16, 2))


def _integer(value: Any) -> int | None:
    """Return an int for zigpy's integer types (int subclasses), never for bools or floats."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return int(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scale(cluster: Cluster, *names: str) -> int:
    """The first positive scale attribute the device reported, else 1 (as ZHA does)."""
    for name in names:
        value = _integer(cluster.get(name))
        if value:
            return value
    return 1


def _on_off(cluster: Cluster, value: Any) -> dict[str, Any] | None:
    if isinstance(value, bool) or _integer(value) in (0, 1):
        return {"on": bool(value)}
    return None


def _current_level(cluster: Cluster, value: Any) -> dict[str, Any] | None:
    level = _integer(value)
    return {"brightness": float(level)} if level is not None and 0 <= level <= 254 else None


def _occupancy(cluster: Cluster, value: Any) -> dict[str, Any] | None:
    bits = _integer(value)  # bitmap8; bit 0 is "occupied", the rest are reserved
    return {"occupancy": bool(bits & 0x01)} if bits is not None and 0 <= bits <= 0xFF else None


def _illuminance(cluster: Cluster, value: Any) -> dict[str, Any] | None:
    raw = _integer(value)
    if raw is None or not 0 <= raw <= 0xFFFE:  # 0xFFFF: invalid measurement
        return None
    lux = 0.0 if raw == 0 else 10 ** ((raw - 1) / 10000)
    return {"illuminance_lx": lux} if lux <= MAX_ILLUMINANCE_LX else None


def _active_power(cluster: Cluster, value: Any) -> dict[str, Any] | None:
    raw = _integer(value)
    if raw is None or raw == -0x8000:  # int16 non-value
        return None
    watts = (
        raw
        * _scale(cluster, "ac_power_multiplier", "power_multiplier")
        / _scale(cluster, "ac_power_divisor", "power_divisor")
    )
    return {"power_w": watts} if 0 <= watts <= MAX_POWER_W else None


def _summation(cluster: Cluster, value: Any) -> dict[str, Any] | None:
    raw = _integer(value)
    if raw is None or not 0 <= raw < 0xFFFFFFFFFFFF:  # uint48 non-value
        return None
    unit = cluster.get("unit_of_measure")
    if unit is not None and _integer(unit) not in KWH_UNITS:
        return None
    kwh = raw * _scale(cluster, "multiplier") / _scale(cluster, "divisor")
    return {"energy_kwh": kwh} if kwh <= MAX_ENERGY_KWH else None


def _battery(cluster: Cluster, value: Any) -> dict[str, Any] | None:
    raw = _integer(value)  # half-percent steps, 0xFF: unknown
    return {"battery_percent": raw / 2} if raw is not None and 0 <= raw <= 200 else None


type Decoder = Callable[[Cluster, Any], dict[str, Any] | None]

# (cluster id, ZCL attribute name) -> decoder of that attribute's value into Reading fields.
DECODERS: Final[dict[tuple[int, str], Decoder]] = {
    (ON_OFF, "on_off"): _on_off,
    (LEVEL_CONTROL, "current_level"): _current_level,
    (OCCUPANCY_SENSING, "occupancy"): _occupancy,
    (ILLUMINANCE_MEASUREMENT, "measured_value"): _illuminance,
    (ELECTRICAL_MEASUREMENT, "active_power"): _active_power,
    (METERING, "current_summ_delivered"): _summation,
    (POWER_CONFIGURATION, "battery_percentage_remaining"): _battery,
}


def attribute_reading(
    device: str, cluster: Cluster, attribute_name: str | None, value: Any
) -> Reading | None:
    """Turn one attribute value into a Reading; None for attributes a site does not use."""
    decoder = DECODERS.get((cluster.cluster_id, attribute_name or ""))
    if decoder is None:
        return None
    try:
        fields = decoder(cluster, value)
    except TypeError, ValueError, OverflowError:
        fields = None
    if fields is None or any(
        isinstance(v, float) and not math.isfinite(v) for v in fields.values()
    ):
        return Reading(device=device, rejected=(f"{cluster.ep_attribute}.{attribute_name}",))
    return Reading(device=device, **fields)


def _application(hass: HomeAssistant) -> ControllerApplication | None:
    """ZHA's running zigpy application, or None when ZHA is missing, not set up or stopping."""
    # Looked up by name, not imported: importing ZHA's modules would pull in zigpy and every
    # radio library (about a second of blocking imports) on sites that do not use ZHA at all.
    if ZHA_DOMAIN not in hass.config.components:
        return None
    # Read, never create: ZHA's get_zha_data() would put an empty HAZHAData in hass.data.
    proxy = getattr(hass.data.get(ZHA_DOMAIN), "gateway_proxy", None)
    gateway = getattr(proxy, "gateway", None)
    if gateway is None or getattr(gateway, "shutting_down", False):
        return None
    app: ControllerApplication | None = getattr(gateway, "application_controller", None)
    return app


def _find_device(app: ControllerApplication, ieee: str) -> Device | None:
    from zigpy.types import EUI64  # noqa: PLC0415

    # app.devices holds zigpy Device objects (quirked ones subclass it); typed as BaseDevice
    return app.devices.get(EUI64.convert(ieee))  # type: ignore[return-value]


class _RejoinListener:
    """zigpy application listener: re-attach when a watched device is re-paired or re-read."""

    def __init__(self, owner: ZhaDevices) -> None:
        self._owner = owner

    def device_initialized(self, device: Device) -> None:
        self._owner._reattach(device)

    def device_reinterviewed(self, device: Device) -> None:
        self._owner._reattach(device)


class ZhaDevices:
    """Devices of the site reached through ZHA: attribute reports in, commands out."""

    def __init__(self, hass: HomeAssistant, on_reading: Callable[[Reading], None]) -> None:
        """Deliver every usable or rejected attribute value to `on_reading`."""
        self._hass = hass
        self._on_reading = on_reading
        self._watched: set[str] = set()
        self._unsubscribe: dict[str, list[Callable[[], Any]]] = {}
        self._app: ControllerApplication | None = None
        self._rejoin = _RejoinListener(self)

    @staticmethod
    def available(hass: HomeAssistant) -> bool:
        """Return True when ZHA is loaded and its gateway runs; never raises."""
        try:
            return _application(hass) is not None
        except Exception:  # a probe: a changed ZHA must read as "not there", not break setup
            _LOGGER.debug("ZHA probe failed", exc_info=True)
            return False

    def async_start(self, ieees: Iterable[str]) -> list[str]:
        """Listen to the watched clusters of each device; return the IEEEs not found."""
        app = _application(self._hass)
        wanted = [(text, ieee_key(text)) for text in ieees]
        if app is None:
            return [text for text, _ in wanted]
        if self._app is not app:
            self.async_stop()
            self._app = app
            app.add_listener(self._rejoin)
        missing: list[str] = []
        for text, ieee in wanted:
            if ieee is None:
                missing.append(text)
                continue
            self._watched.add(ieee)  # a device joining later is attached when it appears
            device = _find_device(app, ieee)
            if device is None:
                missing.append(text)
                continue
            self._attach(ieee, device)
        return missing

    def async_stop(self) -> None:
        """Remove every listener."""
        for unsubscribes in self._unsubscribe.values():
            for unsubscribe in unsubscribes:
                unsubscribe()
        self._unsubscribe.clear()
        self._watched.clear()
        if self._app is not None:
            self._app.remove_listener(self._rejoin)
            self._app = None

    def _reattach(self, device: Device) -> None:
        """Follow a watched device whose zigpy object was replaced (re-pair, re-interview)."""
        ieee = str(device.ieee)
        if ieee in self._watched:
            self._attach(ieee, device)

    def _attach(self, ieee: str, device: Device) -> None:
        for unsubscribe in self._unsubscribe.pop(ieee, ()):
            unsubscribe()
        unsubscribes: list[Callable[[], Any]] = []
        for endpoint_id, endpoint in device.endpoints.items():
            if endpoint_id == 0:  # ZDO
                continue
            for cluster_id, cluster in endpoint.in_clusters.items():
                if cluster_id not in WATCHED_CLUSTERS:
                    continue
                handler = self._handler(ieee, cluster)
                unsubscribes.extend(cluster.on_event(event, handler) for event in ATTRIBUTE_EVENTS)
        self._unsubscribe[ieee] = unsubscribes

    def _handler(self, ieee: str, cluster: Cluster) -> Callable[[Any], None]:
        def handle(event: Any) -> None:
            # zigpy calls this inside its report handling: raising here would break ZHA's own
            # listeners and the default response, so nothing may escape.
            try:
                reading = attribute_reading(
                    ieee, cluster, getattr(event, "attribute_name", None), event.value
                )
                if reading is not None:
                    self._on_reading(reading)
            except Exception:
                _LOGGER.exception("Unexpected error handling a ZHA attribute of %s", ieee)

        return handle

    async def async_set_level(self, ieee: str, level_pct: float, transition_s: float) -> None:
        """Move the luminaire to a level (0 switches it off) over a transition."""
        if not (_is_number(level_pct) and 0 <= level_pct <= 100):
            raise ZhaCommandError("invalid_level", repr(level_pct)[:40])
        if not (_is_number(transition_s) and 0 <= transition_s <= MAX_TRANSITION_S):
            raise ZhaCommandError("invalid_transition", repr(transition_s)[:40])
        key = ieee_key(ieee)
        if key is None:
            raise ZhaCommandError("invalid_ieee", repr(ieee)[:40])
        app = _application(self._hass)
        if app is None:
            raise ZhaCommandError("zha_unavailable")
        device = _find_device(app, key)
        if device is None:
            raise ZhaCommandError("unknown_device", key)
        cluster = next(
            (
                endpoint.in_clusters[LEVEL_CONTROL]
                for endpoint_id, endpoint in sorted(device.endpoints.items())
                if endpoint_id != 0 and LEVEL_CONTROL in endpoint.in_clusters
            ),
            None,
        )
        if cluster is None:
            raise ZhaCommandError("no_level_control", key)
        await self._request(
            key,
            cluster,
            level=round(level_pct * 254 / 100),
            transition_time=round(transition_s * 10),
        )

    async def _request(self, ieee: str, cluster: Cluster, **args: int) -> None:
        from zigpy.exceptions import ZigbeeException  # noqa: PLC0415
        from zigpy.zcl.foundation import Status  # noqa: PLC0415

        try:
            result = await cluster.move_to_level_with_on_off(**args)
        except TimeoutError as err:
            raise ZhaCommandError("timeout", ieee) from err
        except ZigbeeException as err:  # DeliveryError, SendError, ...
            raise ZhaCommandError("delivery_failed", f"{ieee}: {err}") from err
        status = getattr(result, "status", None)
        if status is not None and status != Status.SUCCESS:
            raise ZhaCommandError("rejected", f"{ieee}: {status!r}")
