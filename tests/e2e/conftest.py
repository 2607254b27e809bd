"""Real parts for the e2e tests: mosquitto and one `hass` process shared by the session.

hass runs on a copy of config/ in a temporary directory (the repo's own config/ and its
.storage stay untouched); custom_components, dashboards and blueprints are symlinked to
the repo so the tests exercise the working tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
import json
from pathlib import Path
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
import paho.mqtt.publish as mqtt_publish
import pytest
import pytest_socket

from demo import free_port
from demo.broker import HOST, Broker
from demo.homeassistant import HomeAssistantClient, HomeAssistantProcess, prepare_config_dir

HASS_START_TIMEOUT_S = 300.0


@pytest.fixture(autouse=True, scope="session")
def real_sockets_for_session() -> None:
    """Give the session's real parts sockets: phcc disables them before every test.

    phcc's connect() guard stays in place, so nothing but 127.0.0.1 is reachable.
    """
    pytest_socket.enable_socket()


@pytest.fixture(autouse=True, scope="module")
def real_sockets_for_module() -> None:
    """Give a module's own real parts (private_* fixtures) sockets while they start."""
    pytest_socket.enable_socket()


@pytest.fixture(autouse=True)
def real_sockets() -> None:
    """Give each e2e test sockets again (phcc disables them in every test's setup)."""
    pytest_socket.enable_socket()


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the HA-level autouse fixture: e2e tests need no in-process test hass."""


@pytest.fixture(scope="session")
def e2e_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a fresh HA config dir: copies of config/ files, symlinks to the repo's code."""
    return prepare_config_dir(tmp_path_factory.mktemp("ha_config"))


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """Run mosquitto on a free loopback port for the session."""
    # Session fixtures start with the first test that needs them, possibly after a module of
    # private_* fixtures: by then phcc has blocked sockets for that test again.
    pytest_socket.enable_socket()
    mosquitto = Broker(free_port())
    mosquitto.start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()


@pytest.fixture(scope="session")
def hass_process(e2e_config_dir: Path, broker: Broker) -> Iterator[HomeAssistantProcess]:
    """Run one real hass for the session and stop it at the end."""
    pytest_socket.enable_socket()
    process = HomeAssistantProcess(e2e_config_dir, free_port())
    started = time.monotonic()
    process.start()
    try:
        process.wait_until_up(HASS_START_TIMEOUT_S)
        print(f"\nhass API up after {time.monotonic() - started:.1f} s ({process.base_url})")
        yield process
    finally:
        code = process.stop()
        print(f"\nhass exited with {code}; log: {process.log_path}")


@pytest.fixture(scope="session")
def ha(hass_process: HomeAssistantProcess, broker: Broker) -> Iterator[HomeAssistantClient]:
    """Return a client of the onboarded hass with MQTT set up against the test broker."""
    pytest_socket.enable_socket()
    client = HomeAssistantClient(hass_process.base_url, log_tail=hass_process.log_tail)
    try:
        client.authenticate()
        client.wait_until_running(HASS_START_TIMEOUT_S)
        client.setup_mqtt(broker.host, broker.port)
        yield client
    finally:
        client.close()


@pytest.fixture
def publish(broker: Broker) -> Callable[[str, dict[str, Any]], None]:
    """Return a function publishing one JSON message to the test broker (QoS 1)."""

    def _publish(topic: str, payload: dict[str, Any]) -> None:
        mqtt_publish.single(
            topic, json.dumps(payload), qos=1, hostname=HOST, port=broker.port, keepalive=10
        )

    return _publish


@dataclass(frozen=True, slots=True)
class Command:
    """One command Home Assistant published to a Zigbee2MQTT device."""

    at: float  # time.monotonic() when it arrived
    device: str  # the friendly name
    payload: dict[str, Any]


class Zigbee2MqttCommands:
    """Every `zigbee2mqtt/<device>/set` message on the broker, as Zigbee2MQTT would see it."""

    def __init__(self, host: str, port: int) -> None:
        """Connect and subscribe; returns once the broker confirmed the subscription."""
        self._lock = threading.Lock()
        self._commands: list[Command] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="e2e-z2m-commands")
        self._client.on_connect = lambda client, *_: client.subscribe("zigbee2mqtt/+/set", qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise TimeoutError(f"no subscription to zigbee2mqtt/+/set on {host}:{port}")

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: Any) -> None:
        device = message.topic.removeprefix("zigbee2mqtt/").removesuffix("/set")
        try:
            payload = json.loads(message.payload)
        except ValueError:
            payload = {"unparsable": message.payload.decode("utf-8", "replace")}
        with self._lock:
            self._commands.append(Command(time.monotonic(), device, payload))

    def since(self, start: float = 0.0, devices: set[str] | None = None) -> list[Command]:
        """Commands that arrived at or after start (time.monotonic()), for the given devices."""
        with self._lock:
            return [
                command
                for command in self._commands
                if command.at >= start and (devices is None or command.device in devices)
            ]

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def z2m_commands(broker: Broker) -> Iterator[Zigbee2MqttCommands]:
    """Collect what Home Assistant commands Zigbee2MQTT devices to do during one test."""
    commands = Zigbee2MqttCommands(broker.host, broker.port)
    try:
        yield commands
    finally:
        commands.close()


# -- a broker and a hass of a test module's own ------------------------------------------------
# For tests that kill hass (the session's hass serves the other modules) or must not hear the
# other modules' devices: one mosquitto, one config dir and one hass per module.


@pytest.fixture(scope="module")
def private_broker() -> Iterator[Broker]:
    """Run a mosquitto for this module alone."""
    mosquitto = Broker(free_port())
    mosquitto.start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()


@pytest.fixture(scope="module")
def private_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a fresh HA config dir for this module's own hass."""
    return prepare_config_dir(tmp_path_factory.mktemp("ha_private_config"))


@pytest.fixture(scope="module")
def private_hass(
    private_config_dir: Path, private_broker: Broker
) -> Iterator[HomeAssistantProcess]:
    """Run a hass of this module's own, which its tests may kill and restart."""
    process = HomeAssistantProcess(private_config_dir, free_port())
    started = time.monotonic()
    process.start()
    try:
        process.wait_until_up(HASS_START_TIMEOUT_S)
        print(f"\nprivate hass API up after {time.monotonic() - started:.1f} s")
        yield process
    finally:
        code = process.stop()
        print(f"\nprivate hass exited with {code}; log: {process.log_path}")


@pytest.fixture(scope="module")
def private_ha(
    private_hass: HomeAssistantProcess, private_broker: Broker
) -> Iterator[HomeAssistantClient]:
    """Return a client of the module's onboarded hass, MQTT set up against its own broker."""
    client = HomeAssistantClient(private_hass.base_url, log_tail=private_hass.log_tail)
    try:
        client.authenticate()
        client.wait_until_running(HASS_START_TIMEOUT_S)
        client.setup_mqtt(private_broker.host, private_broker.port)
        yield client
    finally:
        client.close()


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """One message a subscriber got."""

    at: float  # time.monotonic() when it arrived
    topic: str
    payload: Any  # the decoded JSON, or {"unparsable": text}
    retained: bool


class MqttRecorder:
    """Every message on one topic filter, from the moment the broker confirmed the subscription."""

    def __init__(self, host: str, port: int, topic_filter: str, client_id: str) -> None:
        """Connect and subscribe; returns once the broker confirmed the subscription."""
        self.topic_filter = topic_filter
        self._lock = threading.Lock()
        self._messages: list[MqttMessage] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.on_connect = lambda client, *_: client.subscribe(topic_filter, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise TimeoutError(f"no subscription to {topic_filter} on {host}:{port}")

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: Any) -> None:
        try:
            payload = json.loads(message.payload)
        except ValueError:
            payload = {"unparsable": message.payload.decode("utf-8", "replace")}
        with self._lock:
            self._messages.append(
                MqttMessage(time.monotonic(), message.topic, payload, bool(message.retain))
            )

    def since(self, start: float = 0.0) -> list[MqttMessage]:
        """Messages that arrived at or after start (time.monotonic())."""
        with self._lock:
            return [message for message in self._messages if message.at >= start]

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()
