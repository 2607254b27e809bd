"""A simulated demo park: waste container sensors and lighting masts over MQTT with paho.

The assets come from the asset file (config/demo_park.geojson). Each container speaks the wire
format of its source binding: The Things Stack v3 uplinks, ChirpStack v4 uplink events,
Zigbee2MQTT device state or City Operations' native JSON. Bins fill at their own rates and
are emptied now and then; one bin runs hot, one sensor goes silent.

Each mast is a Zigbee2MQTT luminaire with a built-in PIR and light sensor: it obeys
`zigbee2mqtt/<friendly name>/set` and answers with its new state on `zigbee2mqtt/<friendly
name>`, as Zigbee2MQTT does (with power and an energy counter where the asset file says
`"metering": true`; the last metering mast has a dead lamp and draws almost nothing). It
answers `zigbee2mqtt/<friendly name>/get` with its state, and Zigbee2MQTT's availability
(`zigbee2mqtt/<friendly name>/availability`, retained `{"state": "online"}` or `"offline"`)
says whether it is reachable: the last mast without metering drops off the network now and
then (offline for a while: no reports, commands lost) and comes back. Walkers stroll from one
end of a path to another, a mast every other tick, and the PIRs see them. The light sensors
always read 2 lx: the demo simulates night, so the masts light up by day too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
import json
from pathlib import Path
import random
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

TTN_APPLICATION = "stadtpark-bins@city-ops"
CHIRPSTACK_APPLICATION = "0b6f2c7e-5d1a-4f0e-9c1d-6a2e8f3b7c10"
ZIGBEE2MQTT_BASE = "zigbee2mqtt"
NATIVE_BASE = "city_ops"

EMPTY_AT_PERCENT = 97.0  # a crew always comes before the lid stops closing
RANDOM_EMPTYING_ABOVE = 55.0  # above this a bin may be emptied on a regular round
RANDOM_EMPTYING_CHANCE = 0.015  # per tick
SILENT_AFTER_TICKS = 3  # the broken sensor reports a few times, then never again
HOT_START_C = 24.0
HOT_STEP_C = 6.0  # per tick: the smouldering bin crosses the 70 °C alarm within ~8 ticks
HOT_PEAK_C = 82.0

WALKERS = 2
TICKS_PER_MAST = 2  # a walker takes this many ticks from one mast to the next
WALKER_START_EVERY_TICKS = 10  # the next walker enters the park this many ticks after the last
OCCUPANCY_TIMEOUT_TICKS = 1  # the PIR reports "no motion" this many ticks after the last walker
REPORT_EVERY_TICKS = 12  # each mast also reports its whole state this often (staggered)
DARK_LUX = 2  # what every light sensor of the demo reads (see the module docstring)
DEAD_LAMP_W = 0.4  # the driver of a dead lamp still draws a little
FLAKY_EVERY_TICKS = 90  # the flaky mast drops off the network this often ...
FLAKY_OFFLINE_TICKS = 8  # ... for this many ticks


@dataclass(slots=True)
class SimulatedContainer:
    """One container with its sensor, as the simulator keeps it."""

    name: str
    source_kind: str
    device: str
    depth_mm: int
    sensor_offset_mm: int
    fill_percent: float
    fill_rate: float  # percentage points per tick
    battery_percent: float
    temperature_c: float
    hot: bool = False
    silent_after_ticks: int | None = None

    def distance_mm(self) -> int:
        """Return what an ultrasonic sensor above the waste would measure."""
        return round(self.sensor_offset_mm + self.depth_mm * (1 - self.fill_percent / 100))


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publication."""

    topic: str
    payload: dict[str, Any]


def load_containers(path: Path, seed: int = 7) -> list[SimulatedContainer]:
    """Read the containers of an asset file and give each a starting state.

    The first ChirpStack bin (its Dragino probe reports temperature) runs hot and the last
    TTN bin goes silent after a few uplinks.
    """
    rng = random.Random(seed)
    collection = json.loads(path.read_text(encoding="utf-8"))
    containers: list[SimulatedContainer] = []
    for feature in collection.get("features", []):
        props = feature.get("properties", {})
        source = props.get("source") or {}
        if props.get("kind") != "container" or "kind" not in source or "device" not in source:
            continue
        containers.append(
            SimulatedContainer(
                name=str(props["name"]),
                source_kind=str(source["kind"]),
                device=str(source["device"]),
                depth_mm=int(props.get("depth_mm", 1000)),
                sensor_offset_mm=int(props.get("sensor_offset_mm", 100)),
                fill_percent=rng.uniform(5, 85),
                fill_rate=rng.choice((0.3, 0.6, 1.0, 1.5, 2.5)),
                battery_percent=rng.uniform(55, 100),
                temperature_c=rng.uniform(8, 16),
            )
        )
    hot = next((c for c in containers if c.source_kind == "chirpstack"), None)
    if hot is not None:
        hot.hot = True
        hot.temperature_c = HOT_START_C
    silent = next((c for c in reversed(containers) if c.source_kind == "ttn"), None)
    if silent is not None:
        silent.silent_after_ticks = SILENT_AFTER_TICKS
    return containers


@dataclass(slots=True)
class SimulatedMast:
    """One mast: a dimmable luminaire with a PIR and a light sensor, through Zigbee2MQTT."""

    name: str
    device: str
    path: str
    neighbours: tuple[str, ...]
    rated_power_w: float
    metering: bool
    dead_lamp: bool = False
    flaky: bool = False  # drops off the Zigbee network now and then
    online: bool = True
    on: bool = False
    brightness: int = 0  # 0-254
    occupancy: bool = False
    vacant_ticks: int = 0  # ticks since a walker was last here
    energy_kwh: float = 0.0
    metered_at: datetime | None = None

    def power_w(self) -> float:
        """What the luminaire draws now."""
        if not self.on or self.brightness == 0:
            return 0.0
        if self.dead_lamp:
            return DEAD_LAMP_W
        return self.rated_power_w * self.brightness / 254

    def meter(self, now: datetime) -> None:
        """Count the energy drawn since the last reading of the meter."""
        if self.metered_at is not None and now > self.metered_at:
            hours = (now - self.metered_at).total_seconds() / 3600
            self.energy_kwh += self.power_w() * hours / 1000
        self.metered_at = now

    def state(self, now: datetime) -> Message:
        """The device state Zigbee2MQTT publishes: every exposed value, not only the changed."""
        payload: dict[str, Any] = {
            "state": "ON" if self.on else "OFF",
            "brightness": self.brightness,
            "occupancy": self.occupancy,
            "illuminance": DARK_LUX,
            "linkquality": 140,
        }
        if self.metering:
            self.meter(now)
            payload["power"] = round(self.power_w(), 1)
            payload["energy"] = round(self.energy_kwh, 4)
        return Message(f"{ZIGBEE2MQTT_BASE}/{self.device}", payload)

    def availability(self) -> Message:
        """Zigbee2MQTT's availability of the device (published retained)."""
        state = "online" if self.online else "offline"
        return Message(f"{ZIGBEE2MQTT_BASE}/{self.device}/availability", {"state": state})


@dataclass(slots=True)
class Walker:
    """Someone walking a path of masts from one end to another."""

    route: list[str]
    ticks: int = 0  # since entering the park

    @property
    def at(self) -> str | None:
        """The mast the walker is under (or walking towards), None once out of the park."""
        step = self.ticks // TICKS_PER_MAST
        return self.route[step] if step < len(self.route) else None


def load_masts(path: Path) -> list[SimulatedMast]:
    """Read the masts of an asset file; the last one with metering gets a dead lamp."""
    collection = json.loads(path.read_text(encoding="utf-8"))
    masts: list[SimulatedMast] = []
    for feature in collection.get("features", []):
        props = feature.get("properties", {})
        source = props.get("source") or {}
        if props.get("kind") != "mast" or source.get("kind") != "zigbee2mqtt":
            continue
        masts.append(
            SimulatedMast(
                name=str(props["name"]),
                device=str(source["device"]),
                path=str(props.get("path", "")),
                neighbours=tuple(str(name) for name in props.get("neighbours", ())),
                rated_power_w=float(props.get("rated_power_w", 40)),
                metering=props.get("metering") is True,
            )
        )
    dead = next((mast for mast in reversed(masts) if mast.metering), None)
    if dead is not None:
        dead.dead_lamp = True
    flaky = next((mast for mast in reversed(masts) if not mast.metering), None)
    if flaky is not None:
        flaky.flaky = True
    return masts


def routes(masts: list[SimulatedMast]) -> list[list[str]]:
    """Every walk from one end of the path network to another (shortest, both directions)."""
    names = {mast.name for mast in masts}
    graph: dict[str, set[str]] = {name: set() for name in names}
    for mast in masts:
        for other in mast.neighbours:
            if other in names and other != mast.name:
                graph[mast.name].add(other)
                graph[other].add(mast.name)
    ends = sorted(name for name, near in graph.items() if len(near) == 1)
    found = []
    for start in ends:
        previous: dict[str, str | None] = {start: None}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            for other in sorted(graph[here]):
                if other not in previous:
                    previous[other] = here
                    queue.append(other)
        for end in ends:
            if end == start or end not in previous:
                continue
            route: list[str] = []
            step: str | None = end
            while step is not None:
                route.append(step)
                step = previous[step]
            found.append(route[::-1])
    return found


class Park:
    """The simulation, one tick at a time, and the luminaires' answers in between.

    Every tick each bin fills, may be emptied and reports once, and the walkers move one
    mast on; luminaires answer commands at once (on paho's network thread).
    """

    def __init__(
        self,
        containers: list[SimulatedContainer],
        seed: int = 7,
        masts: list[SimulatedMast] | None = None,
        walkers: int = WALKERS,
        *,
        flaky: bool = True,
    ) -> None:
        """Simulate the given containers and masts; seed makes a run repeatable.

        `flaky=False` keeps every mast on the network.
        """
        self.containers = containers
        self.ticks = 0
        self._rng = random.Random(seed)
        self.masts = masts or []
        if not flaky:
            for mast in self.masts:
                mast.flaky = False
        self.walkers: list[Walker] = []
        self.routes = routes(self.masts)
        self.max_walkers = walkers
        self._ticks_since_walker = WALKER_START_EVERY_TICKS
        # Commands arrive on paho's network thread while ticks run on the caller's. Whoever
        # changes the park also queues its reports under this lock: a tick's report built
        # before a command must not reach the broker after the luminaire's answer to it.
        self.lock = threading.RLock()

    @classmethod
    def from_asset_file(
        cls, path: Path, seed: int = 7, walkers: int = WALKERS, *, flaky: bool = True
    ) -> Park:
        """Simulate the containers and masts of an asset file."""
        return cls(load_containers(path, seed), seed, load_masts(path), walkers, flaky=flaky)

    def availability(self) -> list[Message]:
        """Every luminaire's availability, as Zigbee2MQTT publishes it when it starts."""
        with self.lock:
            return [mast.availability() for mast in self.masts]

    def command(self, topic: str, payload: bytes, now: datetime | None = None) -> Message | None:
        """Apply a Zigbee2MQTT `/set` command to a luminaire, or answer its `/get`.

        Returns the state the luminaire reports; a device off the network answers nothing.
        """
        prefix = f"{ZIGBEE2MQTT_BASE}/"
        suffix = topic[topic.rfind("/") :]
        if not topic.startswith(prefix) or suffix not in ("/set", "/get"):
            return None
        try:
            wanted = json.loads(payload)
        except ValueError:
            return None  # Zigbee2MQTT logs and ignores a malformed command
        if not isinstance(wanted, dict):
            return None
        with self.lock:
            device = topic[len(prefix) : -len(suffix)]
            mast = next((mast for mast in self.masts if mast.device == device), None)
            if mast is None or not mast.online:
                return None
            now = now or datetime.now(UTC)
            if suffix == "/get":
                return mast.state(now)
            if mast.metering:
                mast.meter(now)  # what was drawn so far, at the old level
            brightness = wanted.get("brightness")
            if isinstance(brightness, int | float) and not isinstance(brightness, bool):
                mast.brightness = max(0, min(254, round(brightness)))
                mast.on = mast.brightness > 0  # a brightness alone switches on (or off at 0)
            state = str(wanted.get("state", "")).upper()
            if state in ("ON", "OFF"):
                mast.on = state == "ON"
            elif state == "TOGGLE":
                mast.on = not mast.on
            return mast.state(now)

    @property
    def hot(self) -> SimulatedContainer | None:
        """Return the bin that runs hot."""
        return next((c for c in self.containers if c.hot), None)

    @property
    def silent(self) -> SimulatedContainer | None:
        """Return the bin whose sensor goes silent."""
        return next((c for c in self.containers if c.silent_after_ticks is not None), None)

    def tick(self, now: datetime | None = None) -> list[Message]:
        """Advance the park one step and return the uplinks it produced."""
        now = now or datetime.now(UTC)
        messages: list[Message] = []
        for container in self.containers:
            self._advance(container)
            if (
                container.silent_after_ticks is not None
                and self.ticks >= container.silent_after_ticks
            ):
                continue
            messages.append(uplink(container, now))
        with self.lock:
            messages.extend(self._walk(now))
        self.ticks += 1
        return messages

    def _walk(self, now: datetime) -> list[Message]:
        """Move the walkers on; return the reports of the PIRs (all of them at the start)."""
        if self.ticks > 0:
            for walker in self.walkers:
                walker.ticks += 1
            self.walkers = [walker for walker in self.walkers if walker.at is not None]
            self._ticks_since_walker += 1
            if (
                self.routes
                and len(self.walkers) < self.max_walkers
                and self._ticks_since_walker >= WALKER_START_EVERY_TICKS
            ):
                self.walkers.append(Walker(list(self._rng.choice(self.routes))))
                self._ticks_since_walker = 0
        present = {walker.at for walker in self.walkers}
        messages = []
        for index, mast in enumerate(self.masts):
            if mast.flaky and self.ticks > 0:
                phase = self.ticks % FLAKY_EVERY_TICKS
                online = phase < FLAKY_EVERY_TICKS - FLAKY_OFFLINE_TICKS
                if online != mast.online:
                    mast.online = online
                    messages.append(mast.availability())
            if mast.name in present:
                mast.vacant_ticks = 0
                mast.occupancy = True
            else:
                mast.vacant_ticks += 1
            vacated = mast.occupancy and mast.vacant_ticks > OCCUPANCY_TIMEOUT_TICKS
            if vacated:
                mast.occupancy = False
            # A PIR repeats "occupied" while it sees someone; Zigbee2MQTT publishes each report,
            # and the device reports its light sensor and meter now and then anyway.
            due = (self.ticks + index) % REPORT_EVERY_TICKS == 0
            if mast.online and (self.ticks == 0 or due or mast.name in present or vacated):
                messages.append(mast.state(now))
        return messages

    def _advance(self, container: SimulatedContainer) -> None:
        """Fill, empty, drain the battery and heat one container."""
        if self.ticks == 0:
            return  # the first report shows the starting state
        container.fill_percent = min(
            100.0, container.fill_percent + container.fill_rate * self._rng.uniform(0.5, 1.5)
        )
        full = container.fill_percent >= EMPTY_AT_PERCENT
        on_the_round = (
            container.fill_percent >= RANDOM_EMPTYING_ABOVE
            and self._rng.random() < RANDOM_EMPTYING_CHANCE
        )
        if full or on_the_round:
            container.fill_percent = self._rng.uniform(1, 5)
        container.battery_percent = max(1.0, container.battery_percent - 0.02)
        if container.hot:
            container.temperature_c = min(HOT_PEAK_C, container.temperature_c + HOT_STEP_C)
        else:
            container.temperature_c += self._rng.uniform(-0.3, 0.3)


def uplink(container: SimulatedContainer, now: datetime) -> Message:
    """Return the container's report in the wire format of its source binding."""
    at = now.isoformat().replace("+00:00", "Z")
    battery = round(container.battery_percent)
    match container.source_kind:
        case "ttn":
            # Milesight EM310-UDL through a TTN payload formatter.
            decoded: dict[str, Any] = {
                "distance": container.distance_mm(),
                "battery": battery,
                "position": "normal",
            }
            return Message(
                f"v3/{TTN_APPLICATION}/devices/{container.device}/up",
                {
                    "end_device_ids": {
                        "device_id": container.device,
                        "application_ids": {
                            "application_id": TTN_APPLICATION.split("@", maxsplit=1)[0]
                        },
                    },
                    "received_at": at,
                    "uplink_message": {"f_port": 85, "decoded_payload": decoded, "received_at": at},
                },
            )
        case "chirpstack":
            # Dragino LDDS75 with a DS18B20 probe through the ChirpStack codec.
            volt = round(3.0 + 0.6 * container.battery_percent / 100, 3)
            return Message(
                f"application/{CHIRPSTACK_APPLICATION}/device/{container.device}/event/up",
                {
                    "deviceInfo": {
                        "applicationId": CHIRPSTACK_APPLICATION,
                        "deviceName": container.name,
                        "devEui": container.device,
                    },
                    "fPort": 2,
                    "object": {
                        "Distance": container.distance_mm(),
                        "Bat": volt,
                        "TempC_DS18B20": round(container.temperature_c, 1),
                    },
                    "time": at,
                },
            )
        case "zigbee2mqtt":
            # A Tuya ultrasonic level sensor as Zigbee2MQTT exposes it.
            depth_m = container.depth_mm * container.fill_percent / 100 / 1000
            return Message(
                f"{ZIGBEE2MQTT_BASE}/{container.device}",
                {
                    "liquid_level_percent": round(container.fill_percent),
                    "liquid_depth": round(depth_m, 3),
                    "battery": battery,
                    "linkquality": 120,
                },
            )
        case _:
            return Message(
                f"{NATIVE_BASE}/{container.device}/state",
                {"distance_mm": container.distance_mm(), "battery": battery},
            )


def connect(park: Park, host: str, port: int) -> mqtt.Client:
    """Connect the park to the broker; from now on its luminaires answer commands.

    Zigbee2MQTT runs before Home Assistant does: connect the park first, so the commands
    Home Assistant sends as it starts find their luminaires. The caller disconnects
    (`disconnect`), which also ends paho's network thread.
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"city-ops-park-{port}")
    subscribed = threading.Event()

    def on_connect(
        client: mqtt.Client, _userdata: Any, _flags: Any, _reason: Any, _props: Any
    ) -> None:
        # Subscribed on every (re)connect: the broker keeps no session for us.
        if park.masts:
            client.subscribe([(f"{ZIGBEE2MQTT_BASE}/+/set", 1), (f"{ZIGBEE2MQTT_BASE}/+/get", 1)])
            # Zigbee2MQTT tells who is reachable as it starts (retained, like its own).
            for message in park.availability():
                client.publish(message.topic, json.dumps(message.payload), qos=1, retain=True)
        else:
            subscribed.set()

    def on_message(client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with park.lock:
            answer = park.command(message.topic, message.payload)
            if answer is not None:
                # No waiting here: this is paho's network thread, which does the sending.
                client.publish(answer.topic, json.dumps(answer.payload), qos=1)

    client.on_connect = on_connect
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = on_message
    client.connect(host, port, keepalive=30)
    client.loop_start()
    if not subscribed.wait(10):
        disconnect(client)
        raise TimeoutError(f"the park could not subscribe on {host}:{port}")
    return client


def disconnect(client: mqtt.Client) -> None:
    """Disconnect a client made by `connect`."""
    client.disconnect()
    client.loop_stop()


def run_park(
    park: Park,
    host: str,
    port: int,
    *,
    interval: float = 5.0,
    duration: float | None = None,
    stop: threading.Event | None = None,
    on_tick: Callable[[Park, list[Message]], None] | None = None,
    client: mqtt.Client | None = None,
) -> int:
    """Publish the park's uplinks every interval until stop is set or duration passes.

    Returns the number of ticks published. Without a client (from `connect`) the park
    connects for this call only, and paho's network thread lives only inside it.
    """
    stop = stop or threading.Event()
    own = client is None
    client = client or connect(park, host, port)
    deadline = None if duration is None else time.monotonic() + duration
    ticks = 0
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            with park.lock:  # queued in the order the park changed (see Park.lock)
                messages = park.tick()
                sent = [
                    client.publish(
                        message.topic,
                        json.dumps(message.payload),
                        qos=1,
                        retain=message.topic.endswith("/availability"),
                    )
                    for message in messages
                ]
            for info in sent:
                info.wait_for_publish(timeout=10)
            ticks += 1
            if on_tick is not None:
                on_tick(park, messages)
            wait = interval if deadline is None else min(interval, deadline - time.monotonic())
            stop.wait(max(0.0, wait))
    finally:
        if own:
            disconnect(client)
    return ticks
