"""The City Operations demo: mosquitto, Home Assistant with config/ and the simulated park.

Run through `scripts/demo`. Environment overrides: CITY_OPS_MQTT_PORT (default 1883),
CITY_OPS_HTTP_PORT (default 8123). Stops cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import atexit
from collections.abc import Callable
import json
import os
from pathlib import Path
import signal
import sys
import threading
import time
from types import FrameType

import paho.mqtt.client as mqtt

from . import CONFIG_DIR, free_port, port_is_open
from .broker import HOST, Broker
from .homeassistant import HomeAssistantClient, HomeAssistantError, HomeAssistantProcess
from .lockers import HomeAssistantDesk, LockerBanks, start_residents
from .park import Message, Park, connect, disconnect, run_park

SITE_NAME = "Stadtpark Norderstedt"
ASSET_FILE = "demo_park.geojson"
# Git-ignored; keeps the long-lived token so a re-run needs no onboarding or login.
TOKEN_FILE = CONFIG_DIR / ".city_ops_demo_token"
# The dashboard strategy gives each site its views under the site's name.
DASHBOARD_PATH = "/city-operations/stadtpark-norderstedt-waste"
LIGHTING_PATH = "/city-operations/stadtpark-norderstedt-lighting"
LOCKERS_PATH = "/city-operations/stadtpark-norderstedt-lockers"
BOOKING_PATH = "/city_ops/book/stadtpark-norderstedt"  # the site's name, as the page makes it


def log(message: str) -> None:
    """Print one progress line."""
    print(f"[demo] {message}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command line options."""
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--mqtt-port", type=int, default=None, help="default 1883")
    parser.add_argument(
        "--http-port", type=int, default=int(os.environ.get("CITY_OPS_HTTP_PORT", "8123"))
    )
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between uplinks")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--config", type=Path, default=CONFIG_DIR)
    return parser.parse_args(argv)


def mqtt_port(requested: int | None) -> int:
    """Return the broker port: the requested one, else 1883, else a free one."""
    if requested is None and (env := os.environ.get("CITY_OPS_MQTT_PORT")):
        requested = int(env)
    if requested is not None:
        return requested
    if not port_is_open(HOST, 1883):
        return 1883
    # A system mosquitto (Debian starts one) usually holds 1883; ours needs no fixed port.
    port = free_port()
    log(f"127.0.0.1:1883 is taken (a system broker?); using {port} for the demo's broker")
    return port


def ensure_site(client: HomeAssistantClient, name: str) -> str:
    """Return the entry id of the site called name, creating it through the config flow."""
    for entry in client.config_entries("city_ops"):
        if entry["title"] == name:
            return str(entry["entry_id"])
    result = client.start_config_flow("city_ops")
    if result.get("type") == "form":
        result = client.continue_config_flow(str(result["flow_id"]), {"name": name})
    if result.get("type") != "create_entry":
        raise HomeAssistantError(f"city_ops config flow for {name!r} ended with {result}")
    entry_id = str(result["result"]["entry_id"])
    client.wait_entry_loaded(entry_id)
    log(f"created site {name!r}")
    return entry_id


def ensure_assets(client: HomeAssistantClient, entry_id: str, asset_file: Path) -> None:
    """Import the demo park's assets when the site lacks some (a site of an older demo).

    Importing is idempotent: assets already there come back as unchanged.
    """
    features = json.loads(asset_file.read_text(encoding="utf-8"))["features"]
    wanted = {(f["properties"]["kind"], f["properties"]["name"]) for f in features}
    have = {(sub["subentry_type"], sub["title"]) for sub in client.subentries(entry_id)}
    if wanted <= have:
        return
    response = client.call_service(
        "city_ops",
        "import_assets",
        {"config_entry_id": entry_id, "path": ASSET_FILE},
        return_response=True,
        timeout=120,
    )
    added = (response or {}).get("added", [])
    log(f"imported {len(added)} assets from config/{ASSET_FILE}")
    client.wait_entry_loaded(entry_id)
    have = {(sub["subentry_type"], sub["title"]) for sub in client.subentries(entry_id)}
    if missing := sorted(wanted - have):
        log(f"warning: the site lacks these assets (kind, name) of the file: {missing}")


class Demo:
    """Owns the processes so that every way out stops them in order."""

    def __init__(self, args: argparse.Namespace) -> None:
        """Prepare, start nothing."""
        self.args = args
        self.stop_event = threading.Event()
        self.broker: Broker | None = None
        self.hass: HomeAssistantProcess | None = None
        self.client: HomeAssistantClient | None = None
        self.park_client: mqtt.Client | None = None
        self.lockers: LockerBanks | None = None
        self.residents: list[threading.Thread] = []

    def shutdown(self) -> None:
        """Stop the residents, hass, then the broker; safe to call more than once."""
        self.stop_event.set()
        for resident in self.residents:
            resident.join(timeout=10)
        self.residents = []
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.park_client is not None:
            disconnect(self.park_client)
            self.park_client = None
        if self.lockers is not None:
            self.lockers.disconnect()
            self.lockers = None
        if self.hass is not None:
            log("stopping Home Assistant")
            code = self.hass.stop()
            log(f"Home Assistant exited with {code}")
            self.hass = None
        if self.broker is not None:
            self.broker.stop()
            log("stopped mosquitto")
            self.broker = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """Ask the main loop to stop; a second signal stops at once."""
        if self.stop_event.is_set():
            raise KeyboardInterrupt
        log(f"got {signal.Signals(signum).name}, shutting down")
        self.stop_event.set()

    def run(self) -> int:
        """Start everything, run the park until stopped, shut down."""
        atexit.register(self.shutdown)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        port = mqtt_port(self.args.mqtt_port)
        self.broker = Broker(port)
        self.broker.start()
        log(f"mosquitto listening on {HOST}:{port}")

        config_dir: Path = self.args.config.resolve()
        # The park's luminaires listen before Home Assistant starts and sends them their levels.
        park = Park.from_asset_file(config_dir / ASSET_FILE)
        self.park_client = connect(park, HOST, port)
        # The locker banks report their compartments (retained) before Home Assistant starts.
        self.lockers = lockers = LockerBanks.from_asset_file(config_dir / ASSET_FILE)
        lockers.connect(HOST, port)
        self.hass = HomeAssistantProcess(config_dir, self.args.http_port)
        self.hass.start()
        log(f"starting Home Assistant with {config_dir} (log: {self.hass.log_path})")
        waited = self.hass.wait_until_up(timeout=600)
        log(f"Home Assistant API up after {waited:.1f} s")
        self.client = client = HomeAssistantClient(self.hass.base_url, log_tail=self.hass.log_tail)
        client.authenticate(TOKEN_FILE if config_dir == CONFIG_DIR else None)
        client.wait_until_running(timeout=300)
        client.setup_mqtt(HOST, port)
        log(f"MQTT integration connected to {HOST}:{port}")
        entry_id = ensure_site(client, SITE_NAME)
        ensure_assets(client, entry_id, config_dir / ASSET_FILE)
        # Residents may also book on the site's own page (off unless an operator switches it on).
        client.update_options(entry_id, {"booking_page": True, "availability_feed": True})
        if self.stop_event.is_set():
            return 0

        log(
            f"simulating {len(park.containers)} containers every {self.args.interval:g} s "
            f"(hot: {park.hot.name if park.hot else '-'}, "
            f"silent: {park.silent.name if park.silent else '-'})"
        )
        dead = next((mast.name for mast in park.masts if mast.dead_lamp), "-")
        log(
            f"simulating {len(park.masts)} masts with up to {park.max_walkers} walkers, a mast "
            f"every other tick; light sensors read 2 lx (simulated night); dead lamp: {dead}"
        )
        # Residents book only once Home Assistant has heard from the banks (its MQTT client
        # connects a few seconds after start-up; until then nothing counts as lendable).
        # Entity ids follow the installation's language: find the sensors by translation key.
        devices = {device["name"]: device["id"] for device in client.device_registry()}
        for bank in lockers.banks.values():
            try:
                sensor = client.find_entity_id("items_available", device_id=devices.get(bank.name))
                client.wait_for_state(sensor, lambda value: value.isdigit() and int(value) > 0)
            except HomeAssistantError:
                log(f"{bank.name} shows no lendable item yet; residents will retry")
        base_url, token, log_tail = self.hass.base_url, client.token, self.hass.log_tail
        self.residents = start_residents(
            lockers,
            # Each resident's thread gets a client of its own (a client is not thread-safe).
            lambda: HomeAssistantDesk(HomeAssistantClient(base_url, token, log_tail=log_tail)),
            self.stop_event,
            log,
        )
        log(
            f"simulating {len(lockers.banks)} locker banks and {len(self.residents)} residents "
            "(one mistypes a code, one keeps an item past its loan, one leaves a door open)"
        )
        print(
            f"\n  City Operations: {self.hass.base_url}{DASHBOARD_PATH}\n"
            f"  Park lighting:   {self.hass.base_url}{LIGHTING_PATH}\n"
            f"  Lending lockers: {self.hass.base_url}{LOCKERS_PATH}\n"
            f"  Booking page:    {self.hass.base_url}{BOOKING_PATH}\n"
            "  (no login from this machine; Ctrl-C stops the demo)\n",
            flush=True,
        )
        run_park(
            park,
            HOST,
            port,
            interval=self.args.interval,
            duration=self.args.duration,
            stop=self.stop_event,
            on_tick=self._watch(),
            client=self.park_client,
        )
        return 0

    def _watch(self) -> Callable[[Park, list[Message]], None]:
        """Return a tick callback that ends the demo when hass or the broker dies."""
        last_report = time.monotonic()

        def on_tick(park: Park, messages: list[Message]) -> None:
            nonlocal last_report
            if self.hass is not None:
                self.hass.check_alive()
            if self.broker is not None and not self.broker.running:
                raise RuntimeError("mosquitto died")
            if time.monotonic() - last_report > 60:
                last_report = time.monotonic()
                log(f"tick {park.ticks}: published {len(messages)} uplinks")

        return on_tick


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the process exit code."""
    demo = Demo(parse_args(argv))
    try:
        return demo.run()
    except KeyboardInterrupt:
        return 130
    except (HomeAssistantError, RuntimeError, OSError) as err:
        print(f"[demo] failed: {err}", file=sys.stderr, flush=True)
        return 1
    finally:
        demo.shutdown()


if __name__ == "__main__":
    sys.exit(main())
