"""Zigbee devices reached through ZHA: zigpy attribute events in, LevelControl and DoorLock out.

The only source module that touches Home Assistant (ZHA's gateway lives in `hass.data`) and
zigpy. Neither is imported when the module loads (zigpy only once ZHA runs, Home Assistant only
for type checking): a site without ZHA, or pure code wanting `ieee_key`, must still load it.

Values are scaled the way ZHA's own sensors scale them, so our entities and ZHA's agree:
power = active_power x (ac_power_multiplier or power_multiplier or 1)
        / (ac_power_divisor or power_divisor or 1), in W;
energy = current_summ_delivered x (multiplier or 1) / (divisor or 1), in kWh (unit_of_measure
0x00/0x80; another unit is rejected, an unknown one is taken as kWh like ZHA does);
illuminance = 10^((measured_value - 1) / 10000) lx, 0 meaning too dark to measure.

Locker banks: `async_start(ieees, lockers=banks)` names the devices that are banks. On a bank,
endpoint n (1..64) is compartment n and only two clusters count: DoorLock `lock_state`
(1 locked; 2 unlocked and 0 "not fully locked" are not locked) and `door_state` (0 open and
3 forced open are open, 1 closed), and OccupancySensing bit 0, which there means "item present"
(on a mast it means motion). They arrive as CompartmentReadings. A DoorLock's
operation_event_notification from its keypad (an unlock attempt with a PIN) arrives as a
KeypadEntry of the bank. `async_set_locked` sends lock_door / unlock_door without a PIN.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import partial
import logging
import math
from typing import TYPE_CHECKING, Any, Final

from .native import keypad_code
from .reading import MAX_COMPARTMENTS, CompartmentReading, DecodeError, KeypadEntry, Reading

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
DOOR_LOCK: Final = 0x0101
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
# On a locker bank's endpoints: the lock and the item sensor of one compartment.
LOCKER_CLUSTERS: Final = frozenset({DOOR_LOCK, OCCUPANCY_SENSING})
# zigpy 2.x emits reports, reads and quirk-transformed updates as separate events and no
# longer calls the legacy `attribute_updated` listener for reports; ZHA's sensors take all three.
ATTRIBUTE_EVENTS: Final = ("attribute_report", "attribute_read", "attribute_updated")

# Same plausibility bounds as the JSON decoders in reading.py.
MAX_ILLUMINANCE_LX: Final = 200_000.0
MAX_POWER_W: Final = 100_000.0
MAX_ENERGY_KWH: Final = 10_000_000.0
KWH_UNITS: Final = frozenset({0x00, 0x80})  # MeteringUnitofMeasure kWh, binary and BCD
MAX_TRANSITION_S: Final = 6553.4  # transition_time is uint16 tenths; 0xFFFF means "default"
# DoorLock lock_state / door_state values we can act on; 0xFF "undefined", jammed and error not.
LOCK_STATES: Final[Mapping[int, bool]] = {0x00: False, 0x01: True, 0x02: False}
DOOR_STATES: Final[Mapping[int, bool]] = {0x00: True, 0x01: False, 0x03: True}
OPERATION_EVENT_NOTIFICATION: Final = 0x20  # DoorLock client command, lock -> coordinator
KEYPAD_SOURCE: Final = 0x00
# Operation events of an unlock attempt (unknown, unlock, unlock refused for PIN or schedule):
# a bank's lock holds no codes of its own, so it reports our codes as refused.
KEYPAD_UNLOCK_EVENTS: Final = frozenset({0x00, 0x02, 0x05, 0x06})

type ZhaReading = Reading | CompartmentReading | KeypadEntry


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


def _lock_state(cluster: Cluster, value: Any) -> dict[str, Any] | None:
    state = _integer(value)
    locked = None if state is None else LOCK_STATES.get(state)
    return None if locked is None else {"locked": locked}


def _door_state(cluster: Cluster, value: Any) -> dict[str, Any] | None:
    state = _integer(value)
    door_open = None if state is None else DOOR_STATES.get(state)
    return None if door_open is None else {"door_open": door_open}


def _item_present(cluster: Cluster, value: Any) -> dict[str, Any] | None:
    fields = _occupancy(cluster, value)
    return None if fields is None else {"item_present": fields["occupancy"]}


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


# The same, for the endpoints of a locker bank (one compartment per endpoint).
COMPARTMENT_DECODERS: Final[dict[tuple[int, str], Decoder]] = {
    (DOOR_LOCK, "lock_state"): _lock_state,
    (DOOR_LOCK, "door_state"): _door_state,
    (OCCUPANCY_SENSING, "occupancy"): _item_present,
}


def _fields(
    decoders: Mapping[tuple[int, str], Decoder],
    cluster: Cluster,
    attribute_name: str | None,
    value: Any,
) -> dict[str, Any] | None:
    """Reading fields of one attribute value (only `rejected` if unusable); None if unused."""
    decoder = decoders.get((cluster.cluster_id, attribute_name or ""))
    if decoder is None:
        return None
    try:
        fields = decoder(cluster, value)
    except TypeError, ValueError, OverflowError:
        fields = None
    if fields is None or any(
        isinstance(v, float) and not math.isfinite(v) for v in fields.values()
    ):
        return {"rejected": (f"{cluster.ep_attribute}.{attribute_name}",)}
    return fields


def attribute_reading(
    device: str, cluster: Cluster, attribute_name: str | None, value: Any
) -> Reading | None:
    """Turn one attribute value into a Reading; None for attributes a site does not use."""
    fields = _fields(DECODERS, cluster, attribute_name, value)
    return None if fields is None else Reading(device=device, **fields)


def compartment_reading(
    device: str, compartment: int, cluster: Cluster, attribute_name: str | None, value: Any
) -> CompartmentReading | None:
    """Turn one attribute value of a bank's endpoint into a CompartmentReading, or None."""
    fields = _fields(COMPARTMENT_DECODERS, cluster, attribute_name, value)
    if fields is None:
        return None
    return CompartmentReading(device=device, compartment=compartment, **fields)


def keypad_entry(device: str, command_id: int, args: Any) -> KeypadEntry | None:
    """Turn a DoorLock's keypad unlock attempt into a KeypadEntry; None for other commands."""
    if command_id != OPERATION_EVENT_NOTIFICATION:
        return None
    source = _integer(getattr(args, "operation_event_source", None))
    event = _integer(getattr(args, "operation_event_code", None))
    if source != KEYPAD_SOURCE or event not in KEYPAD_UNLOCK_EVENTS:
        return None
    try:
        code = keypad_code(getattr(args, "pin", None))
    except DecodeError as err:
        _LOGGER.debug("Keypad entry of %s ignored: %s", device, err)  # err never holds the code
        return None
    return KeypadEntry(device=device, code=code)


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


class _KeypadListener:
    """zigpy cluster listener on a bank's DoorLock: its commands to us, the keypad's among them."""

    def __init__(self, owner: ZhaDevices, ieee: str) -> None:
        self._owner = owner
        self._ieee = ieee

    def cluster_command(self, tsn: int, command_id: int, args: Any) -> None:
        self._owner._deliver(
            self._ieee, "keypad event", lambda: keypad_entry(self._ieee, command_id, args)
        )


class ZhaDevices:
    """Devices of the site reached through ZHA: attribute reports in, commands out."""

    def __init__(self, hass: HomeAssistant, on_reading: Callable[[ZhaReading], None]) -> None:
        """Deliver every usable or rejected attribute value, and keypad entry, to `on_reading`."""
        self._hass = hass
        self._on_reading = on_reading
        self._watched: set[str] = set()
        self._banks: set[str] = set()
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

    def async_start(self, ieees: Iterable[str], *, lockers: Iterable[str] = ()) -> list[str]:
        """Listen to masts and containers (`ieees`) and locker banks; return the IEEEs not found.

        A device named in `lockers` is a bank even when `ieees` names it too.
        """
        app = _application(self._hass)
        banks = list(lockers)
        bank_keys = {ieee_key(text) for text in banks}
        wanted = [(text, ieee_key(text)) for text in dict.fromkeys([*ieees, *banks])]
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
            if ieee in bank_keys:
                self._banks.add(ieee)
            else:
                self._banks.discard(ieee)
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
        self._banks.clear()
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
        bank = ieee in self._banks
        for endpoint_id, endpoint in device.endpoints.items():
            if endpoint_id == 0:  # ZDO
                continue
            if bank and not 1 <= endpoint_id <= MAX_COMPARTMENTS:
                continue  # not a compartment (e.g. Green Power on 242)
            for cluster_id, cluster in endpoint.in_clusters.items():
                if cluster_id not in (LOCKER_CLUSTERS if bank else WATCHED_CLUSTERS):
                    continue
                handler = (
                    self._compartment_handler(ieee, endpoint_id, cluster)
                    if bank
                    else self._handler(ieee, cluster)
                )
                unsubscribes.extend(cluster.on_event(event, handler) for event in ATTRIBUTE_EVENTS)
                if bank and cluster_id == DOOR_LOCK:
                    listener = _KeypadListener(self, ieee)
                    cluster.add_listener(listener)
                    unsubscribes.append(partial(cluster.remove_listener, listener))
        self._unsubscribe[ieee] = unsubscribes

    def _handler(self, ieee: str, cluster: Cluster) -> Callable[[Any], None]:
        def handle(event: Any) -> None:
            self._deliver(
                ieee,
                "attribute",
                lambda: attribute_reading(
                    ieee, cluster, getattr(event, "attribute_name", None), event.value
                ),
            )

        return handle

    def _compartment_handler(
        self, ieee: str, compartment: int, cluster: Cluster
    ) -> Callable[[Any], None]:
        def handle(event: Any) -> None:
            self._deliver(
                ieee,
                "attribute",
                lambda: compartment_reading(
                    ieee, compartment, cluster, getattr(event, "attribute_name", None), event.value
                ),
            )

        return handle

    def _deliver(self, ieee: str, what: str, decode: Callable[[], ZhaReading | None]) -> None:
        # zigpy calls this inside its message handling: raising here would break ZHA's own
        # listeners and the default response, so nothing may escape.
        try:
            reading = decode()
            if reading is not None:
                self._on_reading(reading)
        except Exception:
            _LOGGER.exception("Unexpected error handling a ZHA %s of %s", what, ieee)

    async def async_set_level(self, ieee: str, level_pct: float, transition_s: float) -> None:
        """Move the luminaire to a level (0 switches it off) over a transition."""
        if not (_is_number(level_pct) and 0 <= level_pct <= 100):
            raise ZhaCommandError("invalid_level", repr(level_pct)[:40])
        if not (_is_number(transition_s) and 0 <= transition_s <= MAX_TRANSITION_S):
            raise ZhaCommandError("invalid_transition", repr(transition_s)[:40])
        key, device = self._device(ieee)
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
            cluster.move_to_level_with_on_off(
                level=round(level_pct * 254 / 100), transition_time=round(transition_s * 10)
            ),
        )

    async def async_set_locked(self, ieee: str, compartment: int, locked: bool) -> None:
        """Lock or unlock one compartment of a bank (its endpoint `compartment`), without a PIN."""
        if (
            isinstance(compartment, bool)
            or not isinstance(compartment, int)
            or not 1 <= compartment <= MAX_COMPARTMENTS
        ):
            raise ZhaCommandError("invalid_compartment", repr(compartment)[:40])
        key, device = self._device(ieee)
        cluster = getattr(device.endpoints.get(compartment), "in_clusters", {}).get(DOOR_LOCK)
        if cluster is None:
            raise ZhaCommandError("no_door_lock", f"{key} compartment {compartment}")
        await self._request(key, cluster.lock_door() if locked else cluster.unlock_door())

    def last_seen(self, ieee: str) -> datetime | None:
        """When zigpy last heard from a device (any frame), or None; never raises."""
        try:
            _, device = self._device(ieee)
        except ZhaCommandError:
            return None
        seen = getattr(device, "last_seen", None)
        if isinstance(seen, int | float):  # older zigpy: Unix seconds
            return datetime.fromtimestamp(seen, UTC)
        return seen if isinstance(seen, datetime) and seen.tzinfo is not None else None

    def _device(self, ieee: str) -> tuple[str, Device]:
        """The IEEE key and zigpy device a command goes to, or the ZhaCommandError why not."""
        key = ieee_key(ieee)
        if key is None:
            raise ZhaCommandError("invalid_ieee", repr(ieee)[:40])
        app = _application(self._hass)
        if app is None:
            raise ZhaCommandError("zha_unavailable")
        device = _find_device(app, key)
        if device is None:
            raise ZhaCommandError("unknown_device", key)
        return key, device

    async def _request(self, ieee: str, request: Awaitable[Any]) -> None:
        """Await one cluster command; a missing ACK or a refusing status is a ZhaCommandError."""
        from zigpy.exceptions import ZigbeeException  # noqa: PLC0415
        from zigpy.zcl.foundation import Status  # noqa: PLC0415

        try:
            result = await request
        except TimeoutError as err:
            raise ZhaCommandError("timeout", ieee) from err
        except ZigbeeException as err:  # DeliveryError, SendError, ...
            raise ZhaCommandError("delivery_failed", f"{ieee}: {err}") from err
        status = getattr(result, "status", None)
        if status is not None and status != Status.SUCCESS:
            raise ZhaCommandError("rejected", f"{ieee}: {status!r}")
