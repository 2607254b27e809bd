"""A mosquitto broker on 127.0.0.1 with its own generated config and no persistence."""

from __future__ import annotations

import os
from pathlib import Path
import pwd
import shutil
import subprocess
import tempfile
import time
from types import TracebackType
from typing import Self

from . import die_with_parent, port_is_open, tail

HOST = "127.0.0.1"


def mosquitto_binary() -> str:
    """Return the mosquitto executable (Debian puts it in /usr/sbin, often not on PATH)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if found is None:
        raise FileNotFoundError("mosquitto not found: run scripts/setup")
    return found


class Broker:
    """mosquitto listening on 127.0.0.1:port, config and log in a private run directory."""

    def __init__(self, port: int, run_dir: Path | None = None) -> None:
        """Prepare a broker; run_dir defaults to a fresh temporary directory."""
        self.host = HOST
        self.port = port
        self._own_run_dir = run_dir is None
        self.run_dir = (
            Path(tempfile.mkdtemp(prefix="city_ops_mqtt_")) if run_dir is None else run_dir
        )
        self.conf_path = self.run_dir / "mosquitto.conf"
        self.log_path = self.run_dir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start mosquitto and wait until it accepts connections."""
        if self._process is not None:
            raise RuntimeError("broker already started")
        if port_is_open(self.host, self.port):
            raise RuntimeError(f"port {self.host}:{self.port} is already in use")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(
            "\n".join(
                [
                    f"listener {self.port} {self.host}",
                    "allow_anonymous true",
                    # Started as root, mosquitto would switch to the `mosquitto` user and could
                    # not write its log into our private run directory.
                    f"user {pwd.getpwuid(os.getuid()).pw_name}",
                    # Retained messages die with the broker: every run starts clean.
                    "persistence false",
                    f"log_dest file {self.log_path}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    "connection_messages true",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        self._process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.conf_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 (one syscall, see die_with_parent)
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise RuntimeError(f"mosquitto exited with {code} at start:\n{tail(self.log_path)}")
            if port_is_open(self.host, self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(
            f"mosquitto did not listen on {self.host}:{self.port} within {timeout:.0f} s:\n"
            f"{tail(self.log_path)}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop mosquitto (SIGTERM, then SIGKILL) and remove a temporary run directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        """Return whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        """Start the broker."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the broker."""
        self.stop()
