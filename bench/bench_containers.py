"""Container messages per second: city_ops against Home Assistant's own MQTT sensor, same run.

Every side gets the same TTN v3 uplink stream, injected the same way: through the MQTT
integration's message callback (the function paho calls), so each message pays MQTT
subscription matching and dispatch, decoding, computing the fill level and writing a state.
Only one side is loaded while it is timed (the others are unloaded), rounds alternate
(A B C A B C ...), and the table reports each side's median and the ratio of the medians.
A third, bench-only side ("floor") shows what one state write per message costs by itself.
See bench/README.md.

    .venv/bin/python bench/bench_containers.py            # full run
    .venv/bin/python bench/bench_containers.py --quick    # a short run
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import gc
import importlib
import json
import logging
from pathlib import Path
import statistics
import sys
import tempfile
import time
import tracemalloc
from typing import Any
from unittest.mock import MagicMock, Mock, patch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Our package must be imported before Home Assistant's test helpers: phcc ships its own
# testing_config/custom_components and HA would not find city_ops otherwise (TOOLCHAIN.md).
import custom_components.city_ops  # noqa: E402, F401, I001
from bench.mqtt_stub import async_setup_stubbed_mqtt  # noqa: E402
from custom_components.city_ops.const import DOMAIN, TOPIC_DEFAULTS_DATA  # noqa: E402

from paho.mqtt.client import MQTTMessage  # noqa: E402
from pytest_homeassistant_custom_component.common import (  # noqa: E402
    MockConfigEntry,
    MockModule,
    MockMqttReasonCode,
    MockPlatform,
    async_fire_mqtt_message,
    async_test_home_assistant,
    mock_integration,
    mock_platform,
)
import yaml  # noqa: E402

from homeassistant import loader  # noqa: E402
from homeassistant.components import mqtt  # noqa: E402
from homeassistant.components.sensor import SensorEntity, SensorStateClass  # noqa: E402
from homeassistant.config_entries import (  # noqa: E402
    ConfigEntry,
    ConfigFlow,
    ConfigEntryState,
    ConfigSubentryData,
)
from homeassistant.const import EVENT_STATE_CHANGED  # noqa: E402
from homeassistant.core import Event, HomeAssistant, callback  # noqa: E402
from homeassistant.helpers import entity_registry as er  # noqa: E402
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback  # noqa: E402
from homeassistant.setup import async_setup_component  # noqa: E402
from homeassistant.util import dt as dt_util  # noqa: E402
from homeassistant.util.json import json_loads  # noqa: E402

APP_TOPIC = "v3/city-bins@ttn/devices/{device}/up"
DEPTH_MM = 1200
OFFSET_MM = 100
# Home Assistant delivers up to this many messages per socket read (MAX_PACKETS_TO_READ in
# homeassistant/components/mqtt/client.py); we yield to the event loop between such batches.
BATCH = 500
TARGET_RATIO = 1.5  # city_ops messages per second against the peer's (issue 10)
PEER_TEMPLATE = (
    "{{ [0, [100, (100 * (1 - (value_json.uplink_message.decoded_payload.distance - 100)"
    " / 1200))] | min] | max | round(1) }}"
)


def device_name(index: int) -> str:
    return f"bin-{index:04d}"


def distance_mm(device: int, k: int) -> int:
    """The k-th distance of a device: a triangle wave 200..1000 mm in 8 mm steps.

    Consecutive readings of a device always differ by 8 mm (0.67 fill points), so every message
    changes the fill level on both sides, and never by the 30 points that mean "emptied".
    """
    phase = (k + device * 37) % 200
    return 200 + 8 * (phase if phase <= 100 else 200 - phase)


def expected_fill(distance: float) -> float:
    """The fill level both sides must show, computed here independently of both."""
    return round(min(100.0, max(0.0, 100.0 * (1 - (distance - OFFSET_MM) / DEPTH_MM))), 1)


@dataclass
class Stream:
    """One deterministic stream; each side reads it from its own cursor, so both see the same."""

    containers: int

    def payload(self, device: int, k: int) -> bytes:
        body = {
            "end_device_ids": {"device_id": device_name(device)},
            "uplink_message": {
                "f_port": 85,
                "decoded_payload": {
                    "distance": distance_mm(device, k),
                    "battery": 90 + device % 10,
                },
            },
        }
        return json.dumps(body).encode()

    def messages(self, start: int, count: int) -> list[tuple[str, bytes]]:
        """Messages start..start+count of the stream: devices round robin."""
        out = []
        for j in range(start, start + count):
            device, k = j % self.containers, j // self.containers
            out.append((APP_TOPIC.format(device=device_name(device)), self.payload(device, k)))
        return out

    def last_distance(self, device: int, consumed: int) -> int | None:
        """Distance of the last message of `device` among the first `consumed` messages."""
        if consumed <= device:
            return None
        k = (consumed - 1 - device) // self.containers
        return distance_mm(device, k)


def paho_messages(raw: list[tuple[str, bytes]]) -> list[MQTTMessage]:
    """What paho hands to the on_message callback."""
    out = []
    now = time.monotonic()
    for topic, payload in raw:
        msg = MQTTMessage(topic=topic.encode())
        msg.payload = payload
        msg.qos = 0
        msg.retain = False
        msg.timestamp = now
        msg.properties = None
        out.append(msg)
    return out


FLOOR_DOMAIN = "bench_floor"


class FloorSensor(SensorEntity):
    """The least an integration can do per message: one sensor, one state write."""

    _attr_should_poll = False
    _attr_native_unit_of_measurement = "%"
    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(self, device: str) -> None:
        self._attr_unique_id = f"floor_{device}"
        self._attr_name = f"Floor {device} fill"


def install_floor(hass: HomeAssistant, containers: int) -> None:
    """A throwaway integration: one wildcard subscription, orjson, arithmetic, one write."""
    sensors: dict[str, FloorSensor] = {}

    async def setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
        sensors.clear()
        sensors.update((device_name(i), FloorSensor(device_name(i))) for i in range(containers))

        @callback
        def message(msg: mqtt.ReceiveMessage) -> None:
            sensor = sensors.get(msg.topic.split("/")[3])
            if sensor is None:
                return
            decoded = json_loads(msg.payload)["uplink_message"]["decoded_payload"]
            sensor._attr_native_value = expected_fill(decoded["distance"])
            sensor.async_write_ha_state()

        entry.async_on_unload(
            await mqtt.async_subscribe(hass, "v3/+/devices/+/up", message, qos=1, encoding=None)
        )
        await hass.config_entries.async_forward_entry_setups(entry, ["sensor"])
        return True

    async def unload_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
        return await hass.config_entries.async_unload_platforms(entry, ["sensor"])

    async def setup_platform(
        hass: HomeAssistant, entry: ConfigEntry, add: AddConfigEntryEntitiesCallback
    ) -> None:
        add(list(sensors.values()))

    mock_integration(
        hass,
        MockModule(
            FLOOR_DOMAIN,
            async_setup_entry=setup_entry,
            async_unload_entry=unload_entry,
            partial_manifest={"dependencies": ["mqtt"]},
        ),
    )
    mock_platform(hass, f"{FLOOR_DOMAIN}.sensor", MockPlatform(async_setup_entry=setup_platform))
    mock_platform(hass, f"{FLOOR_DOMAIN}.config_flow", None)

    class FloorFlow(ConfigFlow, domain=FLOOR_DOMAIN):  # registering is all it needs to do
        VERSION = 1


class HourlyClock:
    """Receive times as if every device reported once per report interval (not microseconds apart).

    Only city_ops reads it (through its modules' `dt_util`): its fill-rate prediction, which
    needs 30 minutes of history, then runs on every message as it would on a live site. The
    peer and the floor have no time-dependent logic. Every `utcnow()` call advances the clock
    by one message's share of the interval (the site entities' few calls per second add a
    negligible drift).
    """

    def __init__(self, step: timedelta) -> None:
        self._now = dt_util.utcnow()
        self._step = step

    def utcnow(self) -> datetime:
        self._now += self._step
        return self._now

    def __getattr__(self, name: str) -> Any:
        return getattr(dt_util, name)


def use_hourly_clock(stack: ExitStack, containers: int) -> None:
    clock = HourlyClock(timedelta(seconds=3600 / containers))
    for module in ("runtime", "waste", "sensor", "todo", "services"):
        target = f"custom_components.city_ops.{module}"
        importlib.import_module(target)
        if hasattr(sys.modules[target], "dt_util"):
            stack.enter_context(patch(f"{target}.dt_util", clock))


@dataclass
class Side:
    """One contender: how to load it, unload it and find the fill level of a device."""

    label: str
    load_side: Callable[[], Awaitable[None]]
    unload_side: Callable[[], Awaitable[None]]
    fill_entity: Callable[[int], str]
    cursor: int = 0  # messages of the stream this side has consumed
    rates: list[float] = field(default_factory=list)
    cpu_rates: list[float] = field(default_factory=list)
    writes_per_msg: float = 0.0
    mem_retained: int = 0
    mem_peak: int = 0
    settle: Callable[[], Awaitable[None]] | None = None

    async def load(self) -> None:
        await self.load_side()
        if self.settle is not None:
            await self.settle()

    async def unload(self) -> None:
        await self.unload_side()
        if self.settle is not None:
            await self.settle()


class Bench:
    """The Home Assistant instance, the MQTT client stub and the sides."""

    def __init__(self, hass: HomeAssistant, args: argparse.Namespace, config_dir: Path) -> None:
        self.hass = hass
        self.args = args
        self.config_dir = config_dir
        self.stream = Stream(args.containers)
        self.site_entry: MockConfigEntry | None = None
        self.asset_of_device: dict[str, str] = {}
        self.peer_entities: dict[int, str] = {}
        self.floor_entry: MockConfigEntry | None = None

    # -- MQTT ---------------------------------------------------------------------------------

    async def setup_mqtt(self) -> None:
        """Set up the real MQTT integration on a paho client stub (no broker), as phcc does."""
        self.write_yaml({})
        self.client = await async_setup_stubbed_mqtt(self.hass)

    async def settle(self) -> None:
        """Let the client send its debounced (un)subscribes before the next load or unload.

        Loading and unloading within the MQTT client's 0.1-0.5 s cooldowns is not what a real
        system does, and it can trip a KeyError in the client's subscribe job (seen here once).
        """
        client = self.client
        for _ in range(100):
            await asyncio.sleep(0.05)
            await self.hass.async_block_till_done()
            if not client._pending_subscriptions and not client._pending_unsubscribes:
                return

    def write_yaml(self, config: dict[str, Any]) -> None:
        (self.config_dir / "configuration.yaml").write_text(yaml.safe_dump(config))

    # -- the peer: MQTT sensors with a value template, from YAML --------------------------------

    def peer_yaml(self) -> dict[str, Any]:
        sensors = []
        for index in range(self.args.containers):
            device = device_name(index)
            sensor: dict[str, Any] = {
                "name": f"Peer {device} fill",
                "state_topic": APP_TOPIC.format(device=device),
                "value_template": PEER_TEMPLATE,
                "unit_of_measurement": "%",
                "state_class": "measurement",
            }
            if not self.args.peer_without_unique_id:
                sensor["unique_id"] = f"peer_{device}_fill"
            sensors.append(sensor)
        return {"mqtt": {"sensor": sensors}}

    async def peer_load(self) -> None:
        self.write_yaml(self.peer_yaml())
        await self.hass.services.async_call(mqtt.DOMAIN, "reload", blocking=True)
        await self.hass.async_block_till_done()
        if not self.peer_entities:
            by_name = {
                state.attributes.get("friendly_name"): state.entity_id
                for state in self.hass.states.async_all("sensor")
            }
            for index in range(self.args.containers):
                self.peer_entities[index] = by_name[f"Peer {device_name(index)} fill"]

    async def peer_unload(self) -> None:
        self.write_yaml({})
        await self.hass.services.async_call(mqtt.DOMAIN, "reload", blocking=True)
        await self.hass.async_block_till_done()

    # -- ours: a city_ops site with one container subentry per device ------------------------------

    def make_site_entry(self) -> MockConfigEntry:
        subentries = []
        for index in range(self.args.containers):
            device = device_name(index)
            name = f"Bin {index:04d}"
            subentries.append(
                ConfigSubentryData(
                    data={
                        "name": name,
                        "latitude": 53.70 + index * 1e-4,
                        "longitude": 10.00 + (index % 20) * 1e-4,
                        "waste_kind": "residual",
                        "volume_l": 1100,
                        "depth_mm": DEPTH_MM,
                        "sensor_offset_mm": OFFSET_MM,
                        "report_interval_s": 3600,
                        "source_kind": "ttn",
                        "device": device,
                        "extra": {},
                    },
                    subentry_type="container",
                    title=name,
                    unique_id=f"ttn:{device}",
                )
            )
        return MockConfigEntry(
            domain=DOMAIN,
            title="Bench park",
            data={"name": "Bench park", **TOPIC_DEFAULTS_DATA},
            options={"full_threshold": 80, "due_horizon_h": 24},
            subentries_data=subentries,
        )

    async def ours_load(self) -> None:
        if self.site_entry is None:
            self.site_entry = self.make_site_entry()
            self.site_entry.add_to_hass(self.hass)
            for subentry_id, subentry in self.site_entry.subentries.items():
                self.asset_of_device[subentry.data["device"]] = subentry_id
        assert await self.hass.config_entries.async_setup(self.site_entry.entry_id)
        await self.hass.async_block_till_done()
        assert self.site_entry.state is ConfigEntryState.LOADED

    async def ours_unload(self) -> None:
        assert self.site_entry is not None
        assert await self.hass.config_entries.async_unload(self.site_entry.entry_id)
        await self.hass.async_block_till_done()

    def ours_entity(self, index: int) -> str:
        asset_id = self.asset_of_device[device_name(index)]
        entity_id = er.async_get(self.hass).async_get_entity_id(
            "sensor", DOMAIN, f"{asset_id}_fill_level"
        )
        assert entity_id is not None
        return entity_id

    # -- the floor ---------------------------------------------------------------------------------

    async def floor_load(self) -> None:
        if self.floor_entry is None:
            install_floor(self.hass, self.args.containers)
            self.floor_entry = MockConfigEntry(domain=FLOOR_DOMAIN, title="floor")
            self.floor_entry.add_to_hass(self.hass)
        assert await self.hass.config_entries.async_setup(self.floor_entry.entry_id)
        await self.hass.async_block_till_done()

    async def floor_unload(self) -> None:
        assert self.floor_entry is not None
        assert await self.hass.config_entries.async_unload(self.floor_entry.entry_id)
        await self.hass.async_block_till_done()

    def floor_entity(self, index: int) -> str:
        entity_id = er.async_get(self.hass).async_get_entity_id(
            "sensor", FLOOR_DOMAIN, f"floor_{device_name(index)}"
        )
        assert entity_id is not None
        return entity_id

    # -- running -----------------------------------------------------------------------------------

    async def deliver(self, side: Side, count: int, profiler: Any = None) -> tuple[float, float]:
        """Feed the next `count` messages of the stream to the loaded side.

        Returns wall-clock seconds and the event loop thread's CPU seconds (the latter does not
        count time the shared machine gave to other processes).
        """
        raw = self.stream.messages(side.cursor, count)
        side.cursor += count
        if self.args.inject == "phcc":
            batches_raw = [raw[i : i + BATCH] for i in range(0, len(raw), BATCH)]
            hass = self.hass
            gc.collect()
            start, cpu_start = time.perf_counter(), time.thread_time()
            for batch in batches_raw:
                for topic, payload in batch:
                    async_fire_mqtt_message(hass, topic, payload)
                await asyncio.sleep(0)
            await hass.async_block_till_done()
            return time.perf_counter() - start, time.thread_time() - cpu_start
        msgs = paho_messages(raw)
        batches = [msgs[i : i + BATCH] for i in range(0, len(msgs), BATCH)]
        on_message = self.client._async_mqtt_on_message
        gc.collect()
        if profiler is not None:
            profiler.enable()
        start, cpu_start = time.perf_counter(), time.thread_time()
        for batch in batches:
            for msg in batch:
                on_message(None, None, msg)
            await asyncio.sleep(0)  # as between two socket reads
        await self.hass.async_block_till_done()
        seconds, cpu_seconds = time.perf_counter() - start, time.thread_time() - cpu_start
        if profiler is not None:
            profiler.disable()
        return seconds, cpu_seconds

    def check(self, side: Side, devices: list[int]) -> list[str]:
        """Compare a side's fill levels with the stream; return the problems."""
        problems = []
        for index in devices:
            distance = self.stream.last_distance(index, side.cursor)
            assert distance is not None
            want = expected_fill(distance)
            entity_id = side.fill_entity(index)
            state = self.hass.states.get(entity_id)
            if state is None:
                problems.append(f"{side.label}: {entity_id} has no state")
                continue
            try:
                got = float(state.state)
            except ValueError:
                problems.append(f"{side.label}: {entity_id} is {state.state!r}, want {want}")
                continue
            if got != want:
                problems.append(f"{side.label}: {entity_id} is {got}, want {want}")
        return problems


async def measure_setup(side: Side, hass: HomeAssistant, top: int = 0, per: int = 1) -> None:
    """Load a side for the first time under tracemalloc; keep it loaded.

    With `top`, print the source lines that retain the most of it (KiB per container).
    """
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot() if top else None
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    await side.load()
    await hass.async_block_till_done()
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    after = tracemalloc.take_snapshot() if top else None
    tracemalloc.stop()
    side.mem_retained = current - base
    side.mem_peak = peak - base
    if before is not None and after is not None:
        print(f"retained after setting up {side.label}, by source line (KiB per container):")
        for stat in after.compare_to(before, "lineno")[:top]:
            frame = stat.traceback[0]
            print(
                f"  {stat.size_diff / 1024 / per:7.2f} {stat.count_diff / per:6.1f} blocks"
                f"  {frame.filename.split('site-packages/')[-1]}:{frame.lineno}"
            )


def stub_paho(hass: HomeAssistant, paho: MagicMock) -> None:
    """Acknowledge (un)subscribes and publishes a loop turn later, like phcc's mqtt_client_mock."""
    mids = iter(range(1, 1 << 30))

    def _connect(*_: Any, **__: Any) -> int:
        paho.reconnect()
        return 0

    def _subscribe(*_: Any, **__: Any) -> tuple[int, int]:
        mid = next(mids)
        hass.loop.call_soon(paho.on_subscribe, Mock(), 0, mid, [MockMqttReasonCode()], None)
        return (0, mid)

    def _unsubscribe(*_: Any, **__: Any) -> tuple[int, int]:
        mid = next(mids)
        hass.loop.call_soon(paho.on_unsubscribe, Mock(), 0, mid, [MockMqttReasonCode()], None)
        return (0, mid)

    def _publish(*_: Any, **__: Any) -> Mock:
        mid = next(mids)
        hass.loop.call_soon(paho.on_publish, Mock(), 0, mid, MockMqttReasonCode(), None)
        return Mock(mid=mid, rc=0)

    # Plain functions, not side effects: a mock keeps every call's arguments, which would count
    # as memory retained by whichever side is being set up.
    paho.connect = _connect
    paho.subscribe = _subscribe
    paho.unsubscribe = _unsubscribe
    paho.publish = _publish
    paho.loop_read.return_value = 0


async def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Known, irrelevant here: "custom integration not tested by HA", "zlib_ng not available".
    for name in ("homeassistant.loader", "aiohttp_fast_zlib"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="city_ops_bench_") as tmp, ExitStack() as stack:
        config_dir = Path(tmp)
        # The paho client is the only part replaced (no broker here); everything from its
        # on_message callback on is Home Assistant's real MQTT integration.
        paho_cls = stack.enter_context(
            patch("homeassistant.components.mqtt.client.AsyncMQTTClient")
        )
        if args.clock == "hourly":
            use_hourly_clock(stack, args.containers)
        async with async_test_home_assistant(config_dir=str(config_dir)) as hass:
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS)  # what enable_custom_integrations does
            stub_paho(hass, paho_cls.return_value)
            try:
                return await _run(hass, args, config_dir)
            finally:
                await hass.async_stop(force=True)
    return 1


async def _run(hass: HomeAssistant, args: argparse.Namespace, config_dir: Path) -> int:
    bench = Bench(hass, args, config_dir)
    await bench.setup_mqtt()
    # Shared one-time costs (entity components, platform modules) before anything is measured.
    # Every platform a site sets up (its PLATFORMS), so that importing them is not counted as
    # memory per container.
    for domain in ("sensor", "binary_sensor", "todo", "calendar", "light", "lock"):
        assert await async_setup_component(hass, domain, {})
    import homeassistant.components.mqtt.sensor  # noqa: PLC0415, F401

    import custom_components.city_ops.binary_sensor  # noqa: PLC0415
    import custom_components.city_ops.calendar  # noqa: PLC0415
    import custom_components.city_ops.light  # noqa: PLC0415
    import custom_components.city_ops.lock  # noqa: PLC0415
    import custom_components.city_ops.sensor  # noqa: PLC0415
    import custom_components.city_ops.todo  # noqa: PLC0415, F401

    ours = Side("city_ops", bench.ours_load, bench.ours_unload, bench.ours_entity)
    peer = Side(
        "mqtt sensor + value_template",
        bench.peer_load,
        bench.peer_unload,
        lambda index: bench.peer_entities[index],
    )
    sides = [ours, peer]
    if not args.no_floor:
        sides.append(
            Side(
                "floor (bench-only, see README)",
                bench.floor_load,
                bench.floor_unload,
                bench.floor_entity,
            )
        )
    for side in sides:
        side.settle = bench.settle
    n = args.containers
    sample = sorted({0, 1, n // 2, n - 1})

    print(
        f"{n} containers, {args.rounds} rounds of {args.messages:,} timed messages per side "
        f"(sides alternate), warm-up {args.warmup:,}, injection: {args.inject}, "
        f"city_ops clock: {args.clock}",
        flush=True,
    )
    for side in sides:
        await measure_setup(side, hass, args.memory_top, n)
        await bench.deliver(side, args.warmup)
        side.writes_per_msg = await audit_writes(bench, side, args.messages)
        await side.unload()

    profiler = None
    if args.profile:
        import cProfile  # noqa: PLC0415

        profiler = cProfile.Profile()
    problems: list[str] = []
    for round_no in range(args.rounds):
        for side in sides:
            await side.load()
            await bench.deliver(side, n)  # one message per device after loading, untimed
            profiling = profiler is not None and side.label.startswith(args.profile)
            seconds, cpu_seconds = await bench.deliver(
                side, args.messages, profiler if profiling else None
            )
            side.rates.append(args.messages / seconds)
            side.cpu_rates.append(args.messages / cpu_seconds)
            problems += bench.check(side, sample)
            if round_no == args.rounds - 1:
                problems += bench.check(side, list(range(n)))
                if side is ours:
                    runtime = bench.site_entry.runtime_data  # type: ignore[union-attr]
                    if runtime.stats.applied != runtime.stats.received:
                        problems.append(f"city_ops: stats {runtime.stats}")
            print(
                f"  round {round_no + 1} {side.label:<31} {side.rates[-1]:>10,.0f} msg/s"
                f"  ({side.cpu_rates[-1]:>8,.0f} msg per CPU-s)",
                flush=True,
            )
            await side.unload()

    assert len({side.cursor for side in sides}) == 1  # every side saw the same stream
    report(args, sides, problems)
    if profiler is not None:
        import pstats  # noqa: PLC0415

        print(f"\ncProfile of the timed rounds of {args.profile!r} (top 40 by {args.profile_sort})")
        pstats.Stats(profiler).sort_stats(args.profile_sort).print_stats(40)
    if problems:
        print("\nCORRECTNESS FAILED:")
        for problem in problems[:20]:
            print(f"  {problem}")
        return 1
    return 0


async def audit_writes(bench: Bench, side: Side, count: int) -> float:
    """State writes per message (untimed: the listener itself costs time)."""
    writes = 0

    @callback
    def count_write(_: Event) -> None:
        nonlocal writes
        writes += 1

    unsubscribe = bench.hass.bus.async_listen(EVENT_STATE_CHANGED, count_write)
    await bench.deliver(side, count)
    unsubscribe()
    return writes / count


def report(args: argparse.Namespace, sides: list[Side], problems: list[str]) -> None:
    ours, peer = sides[0], sides[1]
    n = args.containers
    median = {side.label: statistics.median(side.rates) for side in sides}
    cpu_median = {side.label: statistics.median(side.cpu_rates) for side in sides}
    print()
    header = (
        f"{'side':<31} {'median msg/s':>12} {'min':>8} {'max':>8} {'µs/msg':>7} "
        f"{'msg/CPU-s':>10} {'writes/msg':>10} {'setup KiB/ctr':>13} {'peak KiB/ctr':>12}"
    )
    print(header)
    print("-" * len(header))
    for side in sides:
        print(
            f"{side.label:<31} {median[side.label]:>12,.0f} {min(side.rates):>8,.0f} "
            f"{max(side.rates):>8,.0f} {1e6 / median[side.label]:>7.1f} "
            f"{cpu_median[side.label]:>10,.0f} {side.writes_per_msg:>10.2f} "
            f"{side.mem_retained / n / 1024:>13.1f} {side.mem_peak / n / 1024:>12.1f}"
        )
    ratio = median[ours.label] / median[peer.label]
    cpu_ratio = cpu_median[ours.label] / cpu_median[peer.label]
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(
        f"\nratio of medians, city_ops / mqtt sensor: {ratio:.2f}x "
        f"({verdict} the {TARGET_RATIO}x target); "
        f"by CPU time {cpu_ratio:.2f}x"
    )
    if len(sides) > 2:
        floor = sides[2]
        ceiling = median[floor.label] / median[peer.label]
        cpu_ceiling = cpu_median[floor.label] / cpu_median[peer.label]
        print(
            f"ceiling, floor / mqtt sensor: {ceiling:.2f}x, by CPU time {cpu_ceiling:.2f}x "
            "(the most any integration writing one state per message reaches here)"
        )
    print(
        f"correctness: fill level of all {n} devices after the last round equals the stream's "
        f"on every side: {'yes' if not problems else 'NO'}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (3 rounds, 2000 msgs)")
    parser.add_argument("--messages", type=int, help="timed messages per round and side")
    parser.add_argument("--rounds", type=int, help="rounds per side (alternating)")
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--warmup", type=int, help="untimed messages per side before round 1")
    parser.add_argument(
        "--inject",
        choices=("paho", "phcc"),
        default="paho",
        help="paho: call the MQTT client's on_message with prebuilt paho messages (default); "
        "phcc: async_fire_mqtt_message, which builds a message and a Mock per call",
    )
    parser.add_argument(
        "--peer-without-unique-id",
        action="store_true",
        help="peer sensors without unique_id (no entity registry entry)",
    )
    parser.add_argument(
        "--clock",
        choices=("hourly", "real"),
        default="hourly",
        help="hourly: city_ops sees each device report once an hour, as on a live site "
        "(default); real: the wall clock, so all readings fall within seconds and the "
        "fill-rate prediction never has enough history to run",
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the bench-only floor side")
    parser.add_argument(
        "--profile",
        choices=("city_ops", "mqtt", "floor"),
        help="cProfile this side's timed rounds (slows that side: ignore its rate then)",
    )
    parser.add_argument("--profile-sort", default="cumulative", help="pstats sort key")
    parser.add_argument(
        "--memory-top",
        type=int,
        default=0,
        metavar="N",
        help="print the N source lines retaining the most memory after each side's setup",
    )
    args = parser.parse_args(argv)
    if args.messages is None:
        args.messages = 2_000 if args.quick else 20_000
    if args.rounds is None:
        args.rounds = 3 if args.quick else 7
    if args.warmup is None:
        args.warmup = max(args.containers * 5, 2_000 if args.quick else 10_000)
    return args


def main() -> int:
    args = parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
