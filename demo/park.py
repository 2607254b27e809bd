"""A simulated demo park: waste container sensors publishing over MQTT with paho.

The containers come from the asset file (config/demo_park.geojson). Each one speaks the wire
format of its source binding: The Things Stack v3 uplinks, ChirpStack v4 uplink events,
Zigbee2MQTT device state or City Operations' native JSON. Bins fill at their own rates and
are emptied now and then; one bin runs hot, one sensor goes silent.
"""

from __future__ import annotations

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


class Park:
    """The simulation: every tick each bin fills, may be emptied and reports once."""

    def __init__(self, containers: list[SimulatedContainer], seed: int = 7) -> None:
        """Simulate the given containers; seed makes a run repeatable."""
        self.containers = containers
        self.ticks = 0
        self._rng = random.Random(seed)

    @classmethod
    def from_asset_file(cls, path: Path, seed: int = 7) -> Park:
        """Simulate the containers of an asset file."""
        return cls(load_containers(path, seed), seed)

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
        self.ticks += 1
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


def run_park(
    park: Park,
    host: str,
    port: int,
    *,
    interval: float = 5.0,
    duration: float | None = None,
    stop: threading.Event | None = None,
    on_tick: Callable[[Park, list[Message]], None] | None = None,
) -> int:
    """Publish the park's uplinks every interval until stop is set or duration passes.

    Returns the number of ticks published. The paho network thread lives only inside
    this call.
    """
    stop = stop or threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"city-ops-park-{port}")
    client.connect(host, port, keepalive=30)
    client.loop_start()
    deadline = None if duration is None else time.monotonic() + duration
    ticks = 0
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            messages = park.tick()
            for message in messages:
                info = client.publish(message.topic, json.dumps(message.payload), qos=1)
                info.wait_for_publish(timeout=10)
            ticks += 1
            if on_tick is not None:
                on_tick(park, messages)
            wait = interval if deadline is None else min(interval, deadline - time.monotonic())
            stop.wait(max(0.0, wait))
    finally:
        client.disconnect()
        client.loop_stop()
    return ticks
