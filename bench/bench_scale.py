"""City scale on a real Home Assistant: city_ops sites against as many plain MQTT sensors.

For each scenario (1,000 containers, 5,000 containers, a 10,000-asset city of four districts
with containers, masts and locker banks) the bench runs two `hass` processes one after the
other on one mosquitto, through HA's own MQTT integration:

- `city_ops`: sites created through the config flow, assets imported with
  `city_ops.import_assets`;
- `peer`: the same number of `mqtt: sensor:` YAML entries with a `value_template`.

It reports entities created against those every asset must have (and fails when one is
missing), import time, restart time until every state is back, retained memory per asset
(VmRSS after a restart, against the same hass restarted before anything was loaded), CPU per
message over a publish burst (/proc/<pid>/stat), whether a WebSocket client subscribed to
config entries survived the import, and bytes written to `.storage` per minute under a steady
message load. See bench/README.md.

    .venv/bin/python bench/bench_scale.py            # 1,000 / 5,000 containers, 10,000-asset city
    .venv/bin/python bench/bench_scale.py --quick    # 200 / 1,000 containers, 1,000-asset city
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import sys
import tempfile
import threading
import time
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_containers import (  # noqa: E402
    APP_TOPIC,
    DEPTH_MM,
    OFFSET_MM,
    PEER_TEMPLATE,
    distance_mm,
    expected_fill,
)
from demo import free_port  # noqa: E402
from demo.__main__ import ensure_site  # noqa: E402
from demo.broker import Broker  # noqa: E402
from demo.homeassistant import (  # noqa: E402
    HomeAssistantClient,
    HomeAssistantError,
    HomeAssistantProcess,
    prepare_config_dir,
)

PEER_FILE = "bench_mqtt_peer.yaml"
PEER_UNIQUE_PREFIX = "bench_peer_"
HASS_START_TIMEOUT_S = 300.0
SETTLE_S = 5.0  # after the last state is there, before memory is read
CHUNK = 1000  # messages per burst chunk; mosquitto queues 1,000 per client by default
PUBLISH_RATE = 200  # messages per second during the storage minute
# Before the timed burst the hub must be quiet: the recorder's backlog written (an import leaves
# thousands of rows) and the process below QUIET_SHARE of a core over two QUIET_WINDOW_S in a row
# (at most QUIET_MAX_S). Then IDLE_S without messages gives the background CPU the burst also pays.
QUIET_SHARE = 0.05
QUIET_WINDOW_S = 2.0
QUIET_MAX_S = 240.0
IDLE_S = 10.0
Z2M_BASE = "zigbee2mqtt"  # the sites' default Zigbee2MQTT base topic
STORAGE_SETTLE_S = 15.0
REGISTRY_WRITE_S = 12.0  # Home Assistant writes its registries 10 s after a change
# The entities without which an asset is not run at all (the contract's translation keys; the
# light's key is the domain). Everything else a site creates is counted, not required.
ESSENTIAL: Mapping[str, tuple[str, ...]] = {
    "site": ("collection_route", "containers_due"),
    "container": ("fill_level",),
    "mast": ("light",),
    "locker_bank": ("items_available",),
    "compartment": ("compartment", "loan_state"),
}


# -- what is measured (pure) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class District:
    """One site of the city: its assets, named and bound so that sites never share a device."""

    name: str
    prefix: str
    containers: int
    masts: int = 0
    banks: int = 0
    compartments: int = 4  # per bank

    @property
    def assets(self) -> int:
        return self.containers + self.masts + self.banks

    def container_device(self, index: int) -> str:
        return f"{self.prefix}bin-{index:04d}"

    def container_name(self, index: int) -> str:
        return f"{self.name} container {index:04d}"


@dataclass(frozen=True, slots=True)
class Scenario:
    """One hub: the districts it runs, compared with as many plain MQTT sensors as assets."""

    name: str
    districts: tuple[District, ...]

    @property
    def assets(self) -> int:
        return sum(district.assets for district in self.districts)

    def containers(self) -> Iterator[tuple[District, int]]:
        for district in self.districts:
            for index in range(district.containers):
                yield district, index


def scenarios(quick: bool) -> list[Scenario]:
    """1,000 and 5,000 containers and a city of four districts (quick: a fifth of that)."""
    small, large = (200, 1000) if quick else (1000, 5000)
    per = 5 if quick else 1
    city = tuple(
        District(
            f"District {name}", f"{name.lower()}-", 1500 // per, masts=800 // per, banks=200 // per
        )
        for name in ("North", "East", "South", "West")
    )
    return [
        Scenario(f"{small:,} containers", (District("Site", "", small),)),
        Scenario(f"{large:,} containers", (District("Site", "", large),)),
        Scenario(f"{sum(d.assets for d in city):,}-asset city", city),
    ]


def asset_file(district: District) -> dict[str, Any]:
    """The district's assets as the GeoJSON FeatureCollection `import_assets` reads."""
    features: list[dict[str, Any]] = []

    def point(index: int, lane: int) -> list[float]:
        # A grid of ~20 m cells around the park, so tours and maps have real geometry.
        return [10.0 + (index % 100) * 0.0003, 53.7 + (index // 100 + lane * 60) * 0.0002]

    for index in range(district.containers):
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": point(index, 0)},
                "properties": {
                    "kind": "container",
                    "name": district.container_name(index),
                    "source": {"kind": "ttn", "device": district.container_device(index)},
                    "waste_kind": "residual",
                    "volume_l": 1100,
                    "depth_mm": DEPTH_MM,
                    "sensor_offset_mm": OFFSET_MM,
                    "report_interval_s": 3600,
                },
            }
        )
    for index in range(district.masts):
        path, position = divmod(index, 20)
        neighbours = [
            f"{district.name} mast {path * 20 + other:04d}"
            for other in (position - 1, position + 1)
            if 0 <= other < 20 and path * 20 + other < district.masts
        ]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": point(index, 1)},
                "properties": {
                    "kind": "mast",
                    "name": f"{district.name} mast {index:04d}",
                    "source": {
                        "kind": "zigbee2mqtt",
                        "device": f"{district.prefix}mast-{index:04d}",
                    },
                    "path": f"Path {path:03d}",
                    "rated_power_w": 40,
                    "neighbours": neighbours,
                },
            }
        )
    for index in range(district.banks):
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": point(index, 2)},
                "properties": {
                    "kind": "locker_bank",
                    "name": f"{district.name} lockers {index:04d}",
                    "source": {"kind": "native", "device": f"{district.prefix}locker-{index:04d}"},
                    "compartments": [
                        {"number": number, "item": "Walker", "item_type": "walker"}
                        for number in range(1, district.compartments + 1)
                    ],
                    "pickup_window_min": 120,
                    "loan_period_min": 240,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def expected_entities(district: District) -> Counter[tuple[str, str]]:
    """Essential entities per (asset kind, key) the district must have: one count per entity."""
    expected: Counter[tuple[str, str]] = Counter()
    for kind, count in (
        ("site", 1),
        ("container", district.containers),
        ("mast", district.masts),
        ("locker_bank", district.banks),
        ("compartment", district.banks * district.compartments),
    ):
        for key in ESSENTIAL[kind]:
            if count:
                expected[(kind, key)] += count
    return expected


def entity_key(entry: Mapping[str, Any]) -> str:
    """An entity's key in ESSENTIAL: its translation key, else its domain."""
    return str(entry.get("translation_key") or str(entry["entity_id"]).split(".", 1)[0])


def essential_entity_ids(
    registry: Iterable[Mapping[str, Any]],
    entry_id: str,
    subentry_kinds: Mapping[str, str],
) -> dict[tuple[str, str], list[str]]:
    """The site's registered, enabled essential entities by (asset kind, key).

    subentry_kinds maps a subentry id to its type; compartments are the bank's entities whose
    key is a compartment key.
    """
    found: dict[tuple[str, str], list[str]] = {}
    for entry in registry:
        if entry.get("platform") != "city_ops" or entry.get("config_entry_id") != entry_id:
            continue
        if entry.get("disabled_by") is not None:
            continue
        key = entity_key(entry)
        subentry = entry.get("config_subentry_id")
        kind = "site" if subentry is None else subentry_kinds.get(str(subentry), "")
        if kind == "locker_bank" and key in ESSENTIAL["compartment"]:
            kind = "compartment"
        if key in ESSENTIAL.get(kind, ()):
            found.setdefault((kind, key), []).append(str(entry["entity_id"]))
    return found


def missing_entities(
    expected: Counter[tuple[str, str]], found: Mapping[tuple[str, str], list[str]]
) -> dict[tuple[str, str], int]:
    """How many of each expected essential entity are not there."""
    return {
        key: count - len(found.get(key, ()))
        for key, count in expected.items()
        if len(found.get(key, ())) < count
    }


def proc_status_kib(text: str, field_name: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), in KiB."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == field_name:
            return int(value.split()[0])
    raise ValueError(f"no {field_name} in /proc status")


def proc_cpu_ticks(text: str) -> int:
    """utime + stime of /proc/<pid>/stat, in clock ticks.

    The command name (field 2) may hold spaces and parentheses: fields are counted after the
    last `)`.
    """
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def proc_write_bytes(text: str) -> int:
    """write_bytes of /proc/<pid>/io: what the process caused to be written to disk."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == "write_bytes":
            return int(value)
    raise ValueError("no write_bytes in /proc io")


def peer_yaml(devices: Iterable[str]) -> str:
    """The peer's `mqtt:` block: one sensor per device, the fill level from its uplinks."""
    sensors = [
        {
            "name": f"Peer {device} fill",
            "unique_id": f"{PEER_UNIQUE_PREFIX}{device}",
            "state_topic": APP_TOPIC.format(device=device),
            "value_template": PEER_TEMPLATE,
            "unit_of_measurement": "%",
            "state_class": "measurement",
        }
        for device in devices
    ]
    # JSON is YAML: no YAML writer needed for a flat list.
    return json.dumps({"sensor": sensors}, indent=1)


def uplink(device: str, distance: int) -> bytes:
    """A TTN v3 uplink of a distance sensor (the fields Milesight's EM310-UDL decoder gives)."""
    body = {
        "end_device_ids": {"device_id": device},
        "uplink_message": {"f_port": 85, "decoded_payload": {"distance": distance, "battery": 95}},
    }
    return json.dumps(body).encode()


def fill_text(distance: int) -> str:
    """The state both sides must show for a distance (HA writes floats as str())."""
    return str(expected_fill(distance))


# -- the real parts ----------------------------------------------------------------------------


class Proc:
    """/proc readings of one process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ticks_per_s = os.sysconf("SC_CLK_TCK")

    def _read(self, name: str) -> str:
        return Path(f"/proc/{self.pid}/{name}").read_text()

    def rss_kib(self) -> int:
        return proc_status_kib(self._read("status"), "VmRSS")

    def peak_kib(self) -> int:
        return proc_status_kib(self._read("status"), "VmHWM")

    def cpu_s(self) -> float:
        return proc_cpu_ticks(self._read("stat")) / self.ticks_per_s

    def write_bytes(self) -> int:
        return proc_write_bytes(self._read("io"))


class StorageWatch:
    """Bytes written to `.storage`: every new version of a file counts with its size.

    HA writes its stores atomically (a new file renamed over the old one), so a changed
    (inode, mtime, size) is one write. Polled every 50 ms; HA saves a store at most every
    few seconds.
    """

    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.written: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()
        self._seen: dict[str, tuple[int, int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="storage-watch", daemon=True)
        self._scan(count=False)
        self._thread.start()

    def _scan(self, *, count: bool = True) -> None:
        try:
            entries = list(os.scandir(self.storage))
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith("tmp"):
                continue  # the temporary file an atomic write renames into place
            try:
                stat = entry.stat()
            except OSError:
                continue
            key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if self._seen.get(entry.name) != key:
                self._seen[entry.name] = key
                if count:
                    self.written[entry.name] += stat.st_size
                    self.writes[entry.name] += 1

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._scan()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._scan()


class Subscriber:
    """A WebSocket client that keeps one subscription open, as the frontend's pages do.

    It never reconnects: `dropped` says whether Home Assistant closed it.
    """

    def __init__(self, base_url: str, token: str, command: dict[str, Any]) -> None:
        self.base_url = base_url
        self.command = command
        self._token = token
        self.messages = 0
        self.states: dict[str, str] = {}  # what subscribe_entities told, by entity id
        self._changed = threading.Condition()
        self.subscribed = threading.Event()
        self.dropped: str | None = None
        self._loop = asyncio.new_event_loop()
        self._task = self._loop.create_task(self._follow())
        self._thread = threading.Thread(target=self._run, name="ws-subscriber", daemon=True)
        self._thread.start()
        if not self.subscribed.wait(30):
            raise HomeAssistantError(f"{command['type']}: not subscribed ({self.dropped})")

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            self._loop.close()

    async def _follow(self) -> None:
        connector = aiohttp.TCPConnector(resolver=aiohttp.ThreadedResolver())
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.ws_connect(
                f"{self.base_url}/api/websocket", heartbeat=20, max_msg_size=0
            ) as sock,
        ):
            await sock.receive_json()
            await sock.send_json({"type": "auth", "access_token": self._token})
            await sock.receive_json()
            await sock.send_json({"id": 1, **self.command})
            async for message in sock:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                decoded = json.loads(message.data)
                for item in decoded if isinstance(decoded, list) else [decoded]:
                    if item.get("type") == "result" and item.get("success"):
                        self.subscribed.set()
                    elif item.get("type") == "event":
                        self._take(item.get("event"))
                    self.messages += 1
            self.dropped = f"closed by Home Assistant (code {sock.close_code})"

    def _take(self, event: Any) -> None:
        """Follow states from subscribe_entities' compressed events (a: added, c: changed)."""
        if not isinstance(event, dict):
            return
        found = {entity_id: added.get("s") for entity_id, added in event.get("a", {}).items()}
        for entity_id, change in event.get("c", {}).items():
            found[entity_id] = change.get("+", {}).get("s")
        with self._changed:
            self.states.update({key: value for key, value in found.items() if value is not None})
            self._changed.notify_all()

    def wait_state(self, entity_id: str, wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.states.get(entity_id) != wanted:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.dropped:
                    raise HomeAssistantError(
                        f"{entity_id} is {self.states.get(entity_id)!r}, not {wanted!r}, "
                        f"after {timeout:.0f} s ({self.dropped or 'still subscribed'})"
                    )
                self._changed.wait(min(remaining, 1.0))

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)


def lamp_answer(topic: str, payload: bytes, states: dict[str, bytes]) -> tuple[str, bytes] | None:
    """What a Zigbee2MQTT luminaire answers to a command (`/set`) or a question (`/get`).

    The state it was told (on/off, brightness), on its state topic; None for other topics.
    """
    if not topic.startswith(f"{Z2M_BASE}/"):
        return None
    device, _, verb = topic[len(Z2M_BASE) + 1 :].rpartition("/")
    if not device or verb not in ("set", "get"):
        return None
    if verb == "set":
        try:
            told = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(told, dict):
            return None
        state = {key: told[key] for key in ("state", "brightness") if key in told}
        if state.get("state") == "OFF":
            state["brightness"] = 0
        states[device] = json.dumps(state).encode()
    answer = states.get(device)
    return None if answer is None else (f"{Z2M_BASE}/{device}", answer)


class Publisher:
    """A device network: one MQTT client publishing uplinks to the broker.

    Its luminaires answer their commands as Zigbee2MQTT devices do: masts that never answered
    would all raise a no-communication fault a few minutes after the import (a storm of
    events and state writes that is no cost of a message, yet could fall into a timed burst).
    """

    def __init__(self, broker: Broker) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-devices")
        self.client.max_queued_messages_set(0)
        self._lamps: dict[str, bytes] = {}
        self.client.on_connect = self._subscribe_lamps
        self.client.on_message = self._answer
        self.client.connect(broker.host, broker.port, keepalive=60)
        self.client.loop_start()

    def _subscribe_lamps(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe([(f"{Z2M_BASE}/+/set", 0), (f"{Z2M_BASE}/+/get", 0)])

    def _answer(self, client: mqtt.Client, _: Any, message: mqtt.MQTTMessage) -> None:
        answer = lamp_answer(message.topic, message.payload, self._lamps)
        if answer is not None:
            client.publish(*answer, qos=0)

    def send(self, messages: Iterable[tuple[str, bytes]]) -> None:
        info = None
        for topic, payload in messages:
            info = self.client.publish(topic, payload, qos=0)
        if info is not None:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(what: str, probe: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(interval)
    raise HomeAssistantError(f"timed out after {timeout:.0f} s waiting for {what}")


# -- one side of a scenario ----------------------------------------------------------------------


@dataclass
class Result:
    """What one side of one scenario showed."""

    side: str
    scenario: str
    assets: int
    entities: int = 0  # enabled entities the side created
    expected: int = 0  # essential entities expected
    missing: dict[str, int] = field(default_factory=dict)
    import_call_s: float | None = None
    import_s: float | None = None  # until every essential entity has a state
    import_cpu_s: float | None = None  # hass's CPU time (all threads) over import_s
    restart_cpu_s: float | None = None  # the new hass's CPU time until every state is back
    restart_s: float | None = None  # process start until every state is back
    reload_s: float | None = None  # one site reloaded until its states are back
    rss_base_kib: int = 0
    rss_kib: int = 0
    peak_kib: int = 0
    cpu_us_per_msg: float | None = None
    burst_msgs_per_s: float | None = None
    quiet_wait_s: float | None = None  # waited before the burst for the hub to be quiet
    idle_cpu_ms_per_s: float | None = None  # the hub's CPU without messages, just before it
    wrong_values: int = 0
    storage_bytes_per_min: float | None = None
    storage_side_bytes_per_min: float | None = None  # city_ops' own store files
    storage_files: dict[str, float] = field(default_factory=dict)  # bytes per minute
    storage_writes: dict[str, int] = field(default_factory=dict)  # during the window
    storage_sizes: dict[str, int] = field(default_factory=dict)  # own files, at its end
    disk_bytes_per_min: float | None = None
    dropped: list[str] = field(default_factory=list)
    ws_messages: int = 0  # what the subscribed clients received during the import
    problems: list[str] = field(default_factory=list)
    step: str = "start"  # what the side was doing (named in a problem)

    @property
    def kib_per_asset(self) -> float | None:
        if not self.rss_kib:
            return None
        return (self.rss_kib - self.rss_base_kib) / self.assets


class Hub:
    """One `hass` with its own config directory, on the bench's broker."""

    def __init__(self, broker: Broker, work: Path, name: str) -> None:
        self.broker = broker
        self.config_dir = prepare_config_dir(Path(tempfile.mkdtemp(prefix=f"{name}_", dir=work)))
        # Both sides read the same configuration.yaml; only the peer's list is filled.
        with (self.config_dir / "configuration.yaml").open("a", encoding="utf-8") as config:
            config.write(f"\nmqtt: !include {PEER_FILE}\n")
        self.write_peer([])
        self.process = HomeAssistantProcess(self.config_dir, free_port())
        # A large site's registry and state lists take long on a busy machine.
        self.client = HomeAssistantClient(
            self.process.base_url, log_tail=self.process.log_tail, timeout=600
        )

    def write_peer(self, devices: list[str]) -> None:
        (self.config_dir / PEER_FILE).write_text(peer_yaml(devices), encoding="utf-8")

    def start(self) -> float:
        """Start hass; return when its API is up (seconds since the process started)."""
        started = time.monotonic()
        self.process.start()
        self.process.wait_until_up(HASS_START_TIMEOUT_S)
        self.client.drop_connections()
        return time.monotonic() - started

    def first_start(self) -> None:
        self.start()
        self.client.authenticate()
        self.client.wait_until_running(HASS_START_TIMEOUT_S)
        self.client.setup_mqtt(self.broker.host, self.broker.port)

    def restart(self) -> float:
        """Stop and start hass; return the moment the new process started (monotonic)."""
        self.process.stop()
        started = time.monotonic()
        self.start()
        return started

    @property
    def proc(self) -> Proc:
        pid = self.process.pid
        if pid is None:
            raise HomeAssistantError("hass is not running")
        return Proc(pid)

    def states(self) -> dict[str, str]:
        return {state["entity_id"]: state["state"] for state in self.client.states()}

    def settled_rss(self) -> int:
        self.client.wait_until_running(HASS_START_TIMEOUT_S)
        time.sleep(SETTLE_S)
        return self.proc.rss_kib()

    def stop(self) -> None:
        self.client.close()
        self.process.stop()


def states_present(hub: Hub, entity_ids: Iterable[str]) -> Callable[[], bool]:
    wanted = list(entity_ids)

    def probe() -> bool:
        states = hub.states()
        return all(states.get(entity_id, "unavailable") != "unavailable" for entity_id in wanted)

    return probe


def burst(
    hub: Hub,
    publisher: Publisher,
    devices: list[str],
    fill_entities: Mapping[str, str],
    rounds: int,
    first_round: int,
) -> tuple[float, float, dict[str, str], int]:
    """Publish `rounds` uplinks per device in chunks: CPU µs/msg, msgs/s, shown, wrong values.

    The last device is the sentinel: each chunk ends with an uplink of it, whose value must
    arrive (pushed over a WebSocket subscription, no polling) before the next chunk goes out,
    so a busy hub makes mosquitto queue, never drop. Afterwards every device must show the
    fill level of its last uplink.
    """
    *stream, sentinel = devices
    messages = [
        (device, distance_mm(index, first_round + k))
        for k in range(rounds)
        for index, device in enumerate(stream)
    ]
    follower = Subscriber(
        hub.process.base_url,
        str(hub.client.token),
        {"type": "subscribe_entities", "entity_ids": [fill_entities[sentinel]]},
    )
    sent = 0
    last: dict[str, int] = {}
    try:
        proc = hub.proc
        cpu_before = proc.cpu_s()
        started = time.monotonic()
        for number, start in enumerate(range(0, len(messages), CHUNK)):
            # Consecutive sentinel values differ (the triangle wave's neighbours always do).
            chunk = [*messages[start : start + CHUNK], (sentinel, distance_mm(0, number))]
            publisher.send(
                (APP_TOPIC.format(device=d), uplink(d, distance)) for d, distance in chunk
            )
            sent += len(chunk)
            last.update(chunk)
            follower.wait_state(fill_entities[sentinel], fill_text(chunk[-1][1]), timeout=300)
        elapsed = time.monotonic() - started
        cpu = proc.cpu_s() - cpu_before
    finally:
        follower.close()
    shown = {device: fill_text(distance) for device, distance in last.items()}
    states = hub.states()
    wrong = sum(1 for device, text in shown.items() if states.get(fill_entities[device]) != text)
    return cpu / sent * 1e6, sent / elapsed, shown, wrong


def storage_minute(
    hub: Hub, publisher: Publisher, devices: list[str], seconds: float, own: str, result: Result
) -> None:
    """A steady PUBLISH_RATE of uplinks: bytes written to .storage (all, `own*` files), disk.

    Counting starts STORAGE_SETTLE_S into the load, once HA's own 10 s delayed writes
    (the registries') caused by the bursts before are out.
    """
    storage = hub.config_dir / ".storage"
    proc = hub.proc
    watch: StorageWatch | None = None
    disk_before = 0
    counting = 0.0
    started = time.monotonic()
    sent = 0
    k = 1000  # rounds of the triangle wave no burst has used
    while (elapsed := time.monotonic() - started) < STORAGE_SETTLE_S + seconds:
        if watch is None and elapsed >= STORAGE_SETTLE_S:
            watch, disk_before, counting = StorageWatch(storage), proc.write_bytes(), elapsed
        due = int(elapsed * PUBLISH_RATE)
        batch = []
        while sent < due:
            index = sent % len(devices)
            device = devices[index]
            batch.append(
                (
                    APP_TOPIC.format(device=device),
                    uplink(device, distance_mm(index, k + sent // len(devices))),
                )
            )
            sent += 1
        publisher.send(batch)
        time.sleep(0.05)
    if watch is None:
        return
    window = time.monotonic() - started - counting
    disk = proc.write_bytes() - disk_before
    watch.stop()
    per_min = 60.0 / window
    result.storage_files = {
        name: size * per_min for name, size in watch.written.most_common() if size
    }
    result.storage_writes = dict(watch.writes)
    result.storage_sizes = {
        entry.name: entry.stat().st_size
        for entry in os.scandir(storage)
        if entry.name.startswith(own)
    }
    own_bytes = sum(size for name, size in watch.written.items() if name.startswith(own))
    result.storage_bytes_per_min = sum(watch.written.values()) * per_min
    result.storage_side_bytes_per_min = own_bytes * per_min
    result.disk_bytes_per_min = disk * per_min


def run_peer(
    scenario: Scenario, broker: Broker, work: Path, args: argparse.Namespace, base_kib: int
) -> Result:
    devices = [district.container_device(index) for district, index in scenario.containers()]
    # The peer has one sensor per asset: masts and banks count as sensors too.
    extra = [f"extra-{index:05d}" for index in range(scenario.assets - len(devices))]
    result = Result("peer", scenario.name, scenario.assets, expected=scenario.assets)
    result.rss_base_kib = base_kib
    hub = Hub(broker, work, "peer")
    hub.write_peer(devices + extra)
    publisher = Publisher(broker)
    try:
        hub.first_start()
        result.step = "restart"
        started = hub.restart()
        registry = wait_until(
            f"{scenario.assets} peer sensors in the registry",
            lambda: (
                found
                if len(
                    found := {
                        e["unique_id"][len(PEER_UNIQUE_PREFIX) :]: e["entity_id"]
                        for e in hub.client.entity_registry()
                        if e["platform"] == "mqtt"
                        and str(e["unique_id"]).startswith(PEER_UNIQUE_PREFIX)
                    }
                )
                == scenario.assets
                else None
            ),
            timeout=HASS_START_TIMEOUT_S,
            interval=0.5,
        )
        wait_until(
            "every peer state",
            states_present(hub, registry.values()),
            HASS_START_TIMEOUT_S,
            interval=0.25,
        )
        result.restart_s = time.monotonic() - started
        result.restart_cpu_s = hub.proc.cpu_s()
        result.entities = len(registry)
        result.rss_kib = hub.settled_rss()
        result.peak_kib = hub.proc.peak_kib()
        result.step = "message load"
        run_load(hub, publisher, devices, registry, result, args, own="mqtt")
    except HomeAssistantError as err:
        result.problems.append(f"{result.step}: {str(err).splitlines()[0][:300]}")
    finally:
        publisher.close()
        hub.stop()
    return result


def empty_hub(broker: Broker, work: Path) -> tuple[int, float]:
    """VmRSS of a restarted hass with nothing loaded, and its restart time to RUNNING."""
    hub = Hub(broker, work, "empty")
    try:
        hub.first_start()
        started = hub.restart()
        hub.client.wait_until_running(HASS_START_TIMEOUT_S)
        restart_s = time.monotonic() - started
        return hub.settled_rss(), restart_s
    finally:
        hub.stop()


def sentinel_subscribed(hub: Hub, publisher: Publisher, device: str, entity_id: str) -> None:
    """Repeat one uplink of the sentinel until it shows: HA's MQTT client subscribes to
    thousands of topics in batches after a start, and a message before that is lost.
    """
    distance = distance_mm(0, 100)  # 1,000 mm: no chunk of a burst under 100,000 sends it
    deadline = time.monotonic() + HASS_START_TIMEOUT_S
    while (hub.client.state(entity_id) or {}).get("state") != fill_text(distance):
        if time.monotonic() > deadline:
            raise HomeAssistantError(f"{entity_id} never showed an uplink of {device}")
        publisher.send([(APP_TOPIC.format(device=device), uplink(device, distance))])
        time.sleep(2.0)


def wait_quiet(hub: Hub) -> float:
    """Wait until the recorder's backlog is written and the process idles; seconds waited.

    What an import or a start left to do (the recorder writing thousands of rows, first
    statistics) is no cost of a message; on a slow machine it could run into the burst.
    """
    proc = hub.proc
    started = time.monotonic()
    calm = 0
    while calm < 2 and time.monotonic() - started < QUIET_MAX_S:
        backlog = (hub.client.ws({"type": "recorder/info"}) or {}).get("backlog") or 0
        before = proc.cpu_s()
        time.sleep(QUIET_WINDOW_S)
        share = (proc.cpu_s() - before) / QUIET_WINDOW_S
        calm = calm + 1 if backlog == 0 and share < QUIET_SHARE else 0
    return time.monotonic() - started


def idle_cpu_ms_per_s(hub: Hub, seconds: float) -> float:
    """The process's CPU per second without messages (timers, ticks, the recorder)."""
    proc = hub.proc
    before = proc.cpu_s()
    time.sleep(seconds)
    return (proc.cpu_s() - before) / seconds * 1000


def run_load(
    hub: Hub,
    publisher: Publisher,
    devices: list[str],
    fill_entities: Mapping[str, str],
    result: Result,
    args: argparse.Namespace,
    own: str,
) -> dict[str, str]:
    """Bring every device to a known value, time a burst, then a steady load for .storage.

    Returns the fill level every device shows at the end (a last round, waited for).
    """
    sentinel_subscribed(hub, publisher, devices[-1], fill_entities[devices[-1]])
    burst(hub, publisher, devices, fill_entities, rounds=1, first_round=0)
    result.quiet_wait_s = wait_quiet(hub)
    result.idle_cpu_ms_per_s = idle_cpu_ms_per_s(hub, IDLE_S)
    rounds = max(1, args.burst // len(devices))
    result.cpu_us_per_msg, result.burst_msgs_per_s, _, result.wrong_values = burst(
        hub, publisher, devices, fill_entities, rounds=rounds, first_round=1
    )
    if result.wrong_values:
        result.problems.append(f"{result.wrong_values} devices show a wrong fill level")
    storage_minute(hub, publisher, devices, args.storage_s, own, result)
    # A last round, waited for: what every device shows before a restart.
    *_, shown, wrong = burst(hub, publisher, devices, fill_entities, rounds=1, first_round=50)
    if wrong:
        result.problems.append(f"{wrong} devices show a wrong fill level after the load")
    return shown


def run_city_ops(
    scenario: Scenario, broker: Broker, work: Path, args: argparse.Namespace, base_kib: int
) -> Result:
    result = Result("city_ops", scenario.name, scenario.assets)
    expected = {district.name: expected_entities(district) for district in scenario.districts}
    result.expected = sum(sum(counts.values()) for counts in expected.values())
    result.rss_base_kib = base_kib
    hub = Hub(broker, work, "city_ops")
    publisher = Publisher(broker)
    subscribers: list[Subscriber] = []
    try:
        hub.first_start()
        client = hub.client
        entry_ids = {
            district.name: ensure_site(client, district.name) for district in scenario.districts
        }
        for district in scenario.districts:
            (hub.config_dir / f"{district.prefix}assets.geojson").write_text(
                json.dumps(asset_file(district)), encoding="utf-8"
            )
        token = str(client.token)
        result.step = "import"
        subscribers = [
            Subscriber(hub.process.base_url, token, {"type": "config_entries/subscribe"}),
            Subscriber(hub.process.base_url, token, {"type": "subscribe_entities"}),
        ]
        cpu_before = hub.proc.cpu_s()
        started = time.monotonic()
        for district in scenario.districts:
            client.call_service(
                "city_ops",
                "import_assets",
                {
                    "config_entry_id": entry_ids[district.name],
                    "path": f"{district.prefix}assets.geojson",
                },
                return_response=True,
                timeout=900,
            )
        result.import_call_s = time.monotonic() - started
        result.step = "entities after the import"
        found = wait_for_entities(hub, scenario, entry_ids, expected, result)
        essential = [
            entity_id for by_key in found.values() for ids in by_key.values() for entity_id in ids
        ]
        if not result.missing:
            wait_until("every essential state", states_present(hub, essential), 300)
            result.import_s = time.monotonic() - started
            result.import_cpu_s = hub.proc.cpu_s() - cpu_before
        result.dropped = [
            f"{subscriber.command['type']}: {subscriber.dropped}"
            for subscriber in subscribers
            if subscriber.dropped
        ]
        result.ws_messages = sum(subscriber.messages for subscriber in subscribers)
        for subscriber in subscribers:
            subscriber.close()
        subscribers = []
        result.entities = sum(
            1
            for entry in client.entity_registry()
            if entry["platform"] == "city_ops" and entry.get("disabled_by") is None
        )
        fill_entities = fill_level_entities(hub, scenario, entry_ids)
        devices = [
            d
            for d in (dist.container_device(i) for dist, i in scenario.containers())
            if d in fill_entities
        ]
        shown: dict[str, str] = {}
        result.step = "message load"
        if args.import_only:
            time.sleep(REGISTRY_WRITE_S)  # the registries' delayed writes, as after a load
        elif devices:
            shown = run_load(hub, publisher, devices, fill_entities, result, args, own="city_ops")
        else:
            result.problems.append("no container has a fill level: no load was run")
        result.step = "restart"
        started = hub.restart()
        wait_until(
            "every essential state after the restart",
            states_present(hub, essential),
            HASS_START_TIMEOUT_S,
        )
        result.restart_s = time.monotonic() - started
        result.restart_cpu_s = hub.proc.cpu_s()
        after = hub.states()
        lost = sum(1 for device, text in shown.items() if after.get(fill_entities[device]) != text)
        if lost:
            result.problems.append(f"{lost} fill levels differ after the restart")
        if args.import_only:
            return result
        result.rss_kib = hub.settled_rss()
        result.peak_kib = hub.proc.peak_kib()
        result.step = "site reload"
        first = scenario.districts[0].name
        result.reload_s = reload_site(hub, entry_ids[first], found[first])
    except HomeAssistantError as err:
        result.problems.append(f"{result.step}: {str(err).splitlines()[0][:300]}")
    finally:
        for subscriber in subscribers:
            subscriber.close()
        publisher.close()
        hub.stop()
    return result


def wait_for_entities(
    hub: Hub,
    scenario: Scenario,
    entry_ids: Mapping[str, str],
    expected: Mapping[str, Counter[tuple[str, str]]],
    result: Result,
) -> dict[str, dict[tuple[str, str], list[str]]]:
    """Wait until every essential entity is registered, or nothing has changed for a while.

    Returns the essential entities found per district; result.missing says what is not there.
    """
    client = hub.client
    kinds: dict[str, dict[str, str]] = {}
    last_change = time.monotonic()
    last_count = -1
    deadline = time.monotonic() + import_timeout(scenario)
    while True:
        entries = {entry["entry_id"]: entry for entry in client.config_entries("city_ops")}
        loaded = all(entries[entry_id]["state"] == "loaded" for entry_id in entry_ids.values())
        registry = client.entity_registry()
        found: dict[str, dict[tuple[str, str], list[str]]] = {}
        missing: dict[str, int] = {}
        for district in scenario.districts:
            entry_id = entry_ids[district.name]
            if entry_id not in kinds or len(kinds[entry_id]) < district.assets:
                kinds[entry_id] = {
                    sub["subentry_id"]: sub["subentry_type"] for sub in client.subentries(entry_id)
                }
            found[district.name] = essential_entity_ids(registry, entry_id, kinds[entry_id])
            for (kind, key), short in missing_entities(
                expected[district.name], found[district.name]
            ).items():
                missing[f"{kind}.{key}"] = missing.get(f"{kind}.{key}", 0) + short
        count = sum(len(ids) for by_key in found.values() for ids in by_key.values())
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        result.missing = missing
        if loaded and not missing:
            return found
        # A site over Home Assistant's entity limit never gets the rest: stop waiting once
        # the sites are loaded and nothing has been added for a while.
        if (loaded and time.monotonic() - last_change > 30) or time.monotonic() > deadline:
            return found
        time.sleep(1.0)


def import_timeout(scenario: Scenario) -> float:
    """How long an import may take before the bench calls it stuck (far above the target)."""
    return 120 + scenario.assets / 20


def fill_level_entities(
    hub: Hub, scenario: Scenario, entry_ids: Mapping[str, str]
) -> dict[str, str]:
    """Each container device's fill_level entity id (devices without one are left out)."""
    client = hub.client
    device_by_title = {
        district.container_name(index): district.container_device(index)
        for district, index in scenario.containers()
    }
    title_by_subentry = {
        sub["subentry_id"]: sub["title"]
        for entry_id in entry_ids.values()
        for sub in client.subentries(entry_id)
    }
    return {
        device_by_title[title]: str(entry["entity_id"])
        for entry in client.entity_registry()
        if entry["platform"] == "city_ops"
        and entry.get("translation_key") == "fill_level"
        and entry.get("disabled_by") is None
        and (title := title_by_subentry.get(str(entry.get("config_subentry_id"))))
        in device_by_title
    }


def reload_site(hub: Hub, entry_id: str, found: Mapping[tuple[str, str], list[str]]) -> float:
    """Reload one site as an options change would; seconds until its states are back."""
    essential = [entity_id for ids in found.values() for entity_id in ids]
    started = time.monotonic()
    hub.client.request(
        "POST", f"/api/config/config_entries/entry/{entry_id}/reload", timeout=HASS_START_TIMEOUT_S
    )
    wait_until("the reloaded site's states", states_present(hub, essential), HASS_START_TIMEOUT_S)
    return time.monotonic() - started


# -- the report ----------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cpu(seconds: float | None) -> str:
    return "" if seconds is None else f" (CPU {seconds:.1f})"


def _ratio(ours: float | None, peer: float | None) -> str:
    if ours is None or peer is None or peer <= 0:
        return "-"
    return f"{ours / peer:.2f}x"


def report(pairs: list[tuple[Result, Result]]) -> list[str]:
    """Print the table and the targets; return what failed."""
    print()
    print(
        "| scenario | side | entities (essential missing) | import call / to all states s (CPU s) "
        "| restart s (CPU s) | site reload s | KiB per asset | CPU µs/msg | burst msg/s "
        "| idle CPU ms/s (quiet after s) | .storage KiB/min (own) | disk KiB/min | websocket |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    failures: list[str] = []
    for ours, peer in pairs:
        for result in (ours, peer) if peer.restart_s is not None else (ours,):
            missing = sum(result.missing.values())
            storage = (
                "-"
                if result.storage_bytes_per_min is None
                else f"{result.storage_bytes_per_min / 1024:,.0f} "
                f"({(result.storage_side_bytes_per_min or 0) / 1024:,.0f})"
            )
            websocket = (
                "-"
                if result.side == "peer"
                else f"{'dropped' if result.dropped else 'kept'} ({result.ws_messages:,} msgs)"
            )
            print(
                f"| {result.scenario} | {result.side} | {result.entities:,} ({missing:,}) "
                f"| {_num(result.import_call_s)} / {_num(result.import_s)}"
                f"{_cpu(result.import_cpu_s)} "
                f"| {_num(result.restart_s)}{_cpu(result.restart_cpu_s)} | {_num(result.reload_s)} "
                f"| {_num(result.kib_per_asset)} | {_num(result.cpu_us_per_msg, 0)} "
                f"| {_num(result.burst_msgs_per_s, 0)} "
                f"| {_num(result.idle_cpu_ms_per_s)} ({_num(result.quiet_wait_s, 0)}) | {storage} "
                f"| {_num((result.disk_bytes_per_min or 0) / 1024, 0)} | {websocket} |"
            )
        print(
            f"| {ours.scenario} | ratio | | | {_ratio(ours.restart_s, peer.restart_s)} | "
            f"| {_ratio(ours.kib_per_asset, peer.kib_per_asset)} "
            f"| {_ratio(ours.cpu_us_per_msg, peer.cpu_us_per_msg)} "
            f"| {_ratio(ours.burst_msgs_per_s, peer.burst_msgs_per_s)} | | | | |"
        )
        for result in (ours, peer):
            failures += [f"{result.scenario} / {result.side}: {p}" for p in result.problems]
            if result.missing:
                failures.append(
                    f"{result.scenario} / {result.side}: essential entities missing: "
                    + ", ".join(f"{key} {count:,}" for key, count in sorted(result.missing.items()))
                )
            failures += [
                f"{result.scenario} / {result.side}: websocket {d}" for d in result.dropped
            ]
    print()
    print(".storage writes under load (KiB/min, largest files):")
    for ours, peer in pairs:
        for result in (ours, peer):
            files = ", ".join(
                f"{name} {size / 1024:,.0f}"
                for name, size in list(result.storage_files.items())[:4]
            )
            print(f"- {result.scenario} / {result.side}: {files or 'none'}")
    print()
    print("Targets (issue 10):")
    for ours, peer in pairs:
        memory = (
            ours.kib_per_asset is not None
            and peer.kib_per_asset is not None
            and ours.kib_per_asset <= 2 * peer.kib_per_asset
        )
        verdict = "met" if memory else "NOT met"
        if ours.kib_per_asset is None and peer.kib_per_asset is None:
            verdict = "not measured"
        print(
            f"- {ours.scenario}: memory per asset {_num(ours.kib_per_asset)} KiB "
            f"<= 2 x {_num(peer.kib_per_asset)}: {verdict}; "
            f"websocket clients {'dropped' if ours.dropped else 'kept'}"
        )
        if ours.assets >= 5000:
            for what, value, limit in (
                ("restart to all states", ours.restart_s, 15.0),
                ("import to all states", ours.import_s, 10.0),
            ):
                verdict = "met" if value is not None and value <= limit else "NOT met"
                print(f"  {what}: {_num(value)} s <= {limit:.0f} s: {verdict}")
    if failures:
        print("\nFAILED:")
        for failure in failures:
            print(f"- {failure}")
    return failures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the sizes, shorter load")
    parser.add_argument(
        "--only", type=int, action="append", help="run only scenario N (1-3; repeatable)"
    )
    parser.add_argument("--burst", type=int, default=None, help="messages in the CPU burst")
    parser.add_argument("--storage-s", type=float, default=None, help="seconds of steady load")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--import-only",
        action="store_true",
        help="city_ops only: the import (with the WebSocket clients) and a restart; no message "
        "load, no peer, no site reload",
    )
    args = parser.parse_args(argv)
    if args.burst is None:
        args.burst = 4000 if args.quick else 20000
    if args.storage_s is None:
        args.storage_s = 30.0 if args.quick else 60.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = [
        scenario
        for number, scenario in enumerate(scenarios(args.quick), start=1)
        if not args.only or number in args.only
    ]
    pairs: list[tuple[Result, Result]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench_scale_") as work,
        Broker(free_port()) as broker,
    ):
        base_kib, empty_restart_s = empty_hub(broker, Path(work))
        print(
            f"== an empty hass: VmRSS {base_kib / 1024:.1f} MiB after a restart, "
            f"restart to RUNNING {empty_restart_s:.1f} s",
            flush=True,
        )
        for scenario in chosen:
            load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            print(
                f"== {scenario.name}: {scenario.assets:,} assets (load average {load})", flush=True
            )
            started = time.monotonic()
            ours = run_city_ops(scenario, broker, Path(work), args, base_kib)
            print(f"   city_ops done after {time.monotonic() - started:.0f} s", flush=True)
            peer = (
                Result("peer", scenario.name, scenario.assets)
                if args.import_only
                else run_peer(scenario, broker, Path(work), args, base_kib)
            )
            load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            print(
                f"   peer done after {time.monotonic() - started:.0f} s (load average {load})",
                flush=True,
            )
            pairs.append((ours, peer))
            if len(chosen) > 1:  # each scenario's figures as soon as they are there
                report([(ours, peer)])
            if args.json:
                args.json.write_text(
                    json.dumps([[vars(ours), vars(peer)] for ours, peer in pairs], indent=1),
                    encoding="utf-8",
                )
    failures = report(pairs)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
