"""A fresh demo start is the city's first impression: no errors, only the city's notifications.

Runs `python -m demo` itself (mosquitto, a real hass, the simulated park) on a fresh copy of
config/, as `scripts/demo` does on a new machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import re
import signal
import subprocess
import sys
import time

import pytest

from demo import REPO_ROOT, free_port
from demo.homeassistant import HomeAssistantClient, prepare_config_dir

pytestmark = pytest.mark.e2e

READY_LINE = "City Operations: http://"
START_TIMEOUT_S = 600.0
# A log line as HA writes it: "2026-12-03 09:54:09.017 ERROR (MainThread) [logger] message".
ERROR_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ (ERROR|CRITICAL) ")


def listening_addresses(port: int) -> set[str]:
    """Return the local addresses with a TCP socket listening on port (from /proc/net)."""
    found: set[str] = set()
    for name in ("tcp", "tcp6"):
        lines = Path(f"/proc/net/{name}").read_text("ascii").splitlines()[1:]
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                continue
            if name == "tcp":
                octets = bytes.fromhex(address)[::-1]
                found.add(".".join(str(octet) for octet in octets))
            else:
                found.add(address)
    return found


@pytest.fixture(scope="module")
def fresh_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """Run the demo on a fresh config dir until it serves; yield (url, config dir, its output)."""
    config_dir = prepare_config_dir(tmp_path_factory.mktemp("demo_config"))
    output = config_dir / "demo.out"
    http_port, mqtt_port = free_port(), free_port()
    with output.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "demo",
                "--config",
                str(config_dir),
                "--http-port",
                str(http_port),
                "--mqtt-port",
                str(mqtt_port),
                "--interval",
                "2",
            ],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        started = time.monotonic()
        while READY_LINE not in output.read_text("utf-8", "replace"):
            assert process.poll() is None, output.read_text("utf-8", "replace")
            assert time.monotonic() - started < START_TIMEOUT_S, "demo did not come up"
            time.sleep(1)
        print(f"\ndemo served after {time.monotonic() - started:.1f} s")
        yield f"http://127.0.0.1:{http_port}", config_dir, output
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()


def test_fresh_demo_serves_loopback_only(fresh_demo: tuple[str, Path, Path]) -> None:
    url, _config_dir, _output = fresh_demo
    port = int(url.rsplit(":", 1)[1])
    addresses = listening_addresses(port)
    assert addresses == {"127.0.0.1"}, addresses


def test_fresh_demo_logs_no_error_and_only_city_notifications(
    fresh_demo: tuple[str, Path, Path],
) -> None:
    url, config_dir, output = fresh_demo
    time.sleep(30)  # the park runs: containers report, masts boost, residents book
    client = HomeAssistantClient(url)
    try:
        client.token = client.login_trusted_network()
        notifications = client.ws({"type": "persistent_notification/get"})
    finally:
        client.close()
    foreign = [n for n in notifications if not n["notification_id"].startswith("city_ops")]
    assert foreign == [], foreign

    log = (config_dir / "home-assistant.log").read_text("utf-8", "replace").splitlines()
    assert len(log) > 20, "HA wrote no log: the check below would prove nothing"
    errors = [line for line in log if ERROR_LINE.match(line) or line.startswith("Traceback")]
    assert errors == [], "\n".join(errors)
    console = (config_dir / "home-assistant.log.console").read_text("utf-8", "replace")
    assert "Traceback" not in console, console[-4000:]
    assert "Traceback" not in output.read_text("utf-8", "replace")
