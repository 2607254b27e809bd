"""A real `hass` process, its unattended onboarding and a small REST + WebSocket client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
import contextlib
from dataclasses import dataclass
from datetime import datetime
import json
import os
from pathlib import Path
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from types import TracebackType
from typing import Any, Self
import urllib.error
import urllib.parse
import urllib.request

import aiohttp

from . import CONFIG_DIR, REPO_ROOT, VENV_BIN, die_with_parent, port_is_open, tail

HOST = "127.0.0.1"
LOG_NAME = "home-assistant.log"
# HA's own log starts only once logging is set up; tracebacks before that go to the console.
CONSOLE_LOG_NAME = "home-assistant.log.console"
ONBOARDING_USER = "cityops"
ONBOARDING_NAME = "City Operations"
TOKEN_LIFESPAN_DAYS = 3650
ONBOARDING_STEPS = ("user", "core_config", "analytics", "integration")
COPIED_FILES = ("configuration.yaml", "automations.yaml", "demo_park.geojson")
# The closing line of a Python traceback, e.g. "ModuleNotFoundError: No module named 'x'".
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)\b.*")


class HomeAssistantError(RuntimeError):
    """Home Assistant did not do what was asked; the message carries the evidence."""


class HomeAssistantProcess:
    """One `hass -c CONFIG_DIR` process serving http://127.0.0.1:port."""

    def __init__(self, config_dir: Path, port: int, hass_bin: Path | None = None) -> None:
        """Prepare a process for config_dir; nothing starts yet."""
        self.config_dir = config_dir.resolve()
        self.port = port
        self.base_url = f"http://{HOST}:{port}"
        self.hass_bin = hass_bin or VENV_BIN / "hass"
        self.log_path = self.config_dir / LOG_NAME
        self.console_path = self.config_dir / CONSOLE_LOG_NAME
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Return the process id while running."""
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        """Return whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start hass; returns at once (use wait_until_up)."""
        if self.running:
            raise HomeAssistantError("hass is already running")
        if port_is_open(HOST, self.port):
            raise HomeAssistantError(f"port {HOST}:{self.port} is already in use")
        if (stored := self.stored_port()) not in (None, self.port):
            # HA 2026.10 keeps the HTTP settings of its first start in .storage/http and
            # ignores SETUP_PORT from then on.
            raise HomeAssistantError(
                f"{self.config_dir} serves on port {stored} (kept in .storage/http since its "
                f"first start), not {self.port}: use port {stored} or a fresh config directory"
            )
        self.seed_storage()
        env = os.environ | {
            # No `http:` YAML (HA 2026.10 migrates it to storage and raises a repair
            # issue); SETUP_PORT is HA's own override of the default port.
            "SETUP_PORT": str(self.port),
        }
        with self.console_path.open("wb") as console:
            self._process = subprocess.Popen(
                [
                    str(self.hass_bin),
                    "--config",
                    str(self.config_dir),
                    # Requirements come pre-installed by scripts/setup; pip here would
                    # reach for PyPI (and does so for onboarding's met/radio_browser/...).
                    "--skip-pip",
                    "--log-no-color",
                ],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                env=env,
                # Own session: Ctrl-C in the demo's terminal reaches only the demo,
                # which then shuts hass down in order.
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 (one syscall, see die_with_parent)
            )

    def seed_storage(self) -> None:
        """Before the first start: serve this machine only and skip the internet onboarding.

        HA 2026.10 keeps its HTTP settings in .storage/http (YAML would be migrated and raise a
        repair issue), so the demo binds 127.0.0.1 there. Onboarding's core-config step sets up
        met, radio_browser, google_translate and shopping_list, which need the internet; the
        site's core config comes from configuration.yaml, so that step is recorded as done and
        only the owner is created through the onboarding API.
        """
        storage = self.config_dir / ".storage"
        storage.mkdir(exist_ok=True)
        http = storage / "http"
        if not http.exists():
            stable = {
                "server_port": self.port,
                "server_host": [HOST],
                "cors_allowed_origins": [],
                "login_attempts_threshold": -1,
                "ip_ban_enabled": True,
                "ssl_profile": "modern",
                "use_x_frame_options": True,
                "created_at": datetime.now().astimezone().isoformat(),
                "error": None,
                "error_message": None,
            }
            data = {"stable": stable, "pending": None, "yaml_migration_done": True}
            _write_store(http, "http", data, version=2, minor_version=2)
        onboarding = storage / "onboarding"
        if not onboarding.exists():
            done = [step for step in ONBOARDING_STEPS if step != "user"]
            _write_store(onboarding, "onboarding", {"done": done}, version=4, minor_version=1)

    def stored_port(self) -> int | None:
        """Return the HTTP port HA stored at an earlier start of this config dir."""
        try:
            stored = json.loads((self.config_dir / ".storage" / "http").read_text("utf-8"))
            return int(stored["data"]["stable"]["server_port"])
        except OSError, ValueError, KeyError, TypeError:
            return None

    def log_tail(self, lines: int = 40) -> str:
        """Return recent errors and the tail of home-assistant.log (or of the console output).

        Tracebacks are long: the last lines alone often miss the error that matters.
        """
        source = self.log_path if self.log_path.exists() else self.console_path
        errors = [
            line
            for line in tail(source, 5000).splitlines()
            if " ERROR " in line or _EXCEPTION_LINE.match(line)
        ]
        recent = "\n".join(line[:300] for line in errors[-12:]) or "(none)"
        return (
            f"--- recent errors in {source} ---\n{recent}\n"
            f"--- tail of {source} ---\n{tail(source, lines)}"
        )

    def check_alive(self) -> None:
        """Raise with the log tail if hass has exited."""
        if self._process is None:
            raise HomeAssistantError("hass was not started")
        if (code := self._process.poll()) is not None:
            raise HomeAssistantError(f"hass exited with code {code}\n{self.log_tail()}")

    def wait_until_up(self, timeout: float = 300.0) -> float:
        """Wait until the HTTP API answers; return the seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            # HA serves its API and the frontend from one HTTP server that starts once the
            # frontend is set up. /manifest.json needs no token: probing /api/ without one
            # would raise a "Login attempt failed" notification in the UI.
            if _http_status(f"{self.base_url}/manifest.json") == 200:
                return time.monotonic() - started
            time.sleep(0.5)
        raise HomeAssistantError(
            f"hass API at {self.base_url}/api not up within {timeout:.0f} s\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 90.0) -> int | None:
        """Stop hass with SIGTERM (SIGKILL after timeout); return its exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self._process = None
        return process.returncode

    def kill(self) -> None:
        """Kill hass with SIGKILL, as a crash would."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def restart(self, timeout: float = 300.0) -> float:
        """Stop and start hass again; return seconds until its API is back."""
        self.stop()
        self.start()
        return self.wait_until_up(timeout)

    def kill_and_restart(self, timeout: float = 300.0) -> float:
        """Crash hass (SIGKILL: nothing is flushed) and start it on the same config dir.

        Returns the seconds until its API is back. The killed run's console output is kept
        as home-assistant.log.console.1 (HA itself rotates home-assistant.log to .log.1).
        """
        self.kill()
        if self.console_path.exists():
            self.console_path.replace(self.console_path.with_name(f"{CONSOLE_LOG_NAME}.1"))
        self.start()
        return self.wait_until_up(timeout)

    def __enter__(self) -> Self:
        """Start hass and wait for its API."""
        self.start()
        self.wait_until_up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop hass."""
        self.stop()


def prepare_config_dir(config_dir: Path) -> Path:
    """Fill config_dir for hass: copies of config/ files, symlinks to the repo's code.

    The repo's own config/ and its .storage stay untouched; custom_components, dashboards and
    blueprints are symlinked so that hass runs the working tree.
    """
    for name in COPIED_FILES:
        shutil.copy2(CONFIG_DIR / name, config_dir / name)
    (config_dir / "custom_components").symlink_to(REPO_ROOT / "custom_components")
    (config_dir / "dashboards").symlink_to(REPO_ROOT / "dashboards")
    blueprints = config_dir / "blueprints" / "automation"
    blueprints.mkdir(parents=True)
    (blueprints / "city_ops").symlink_to(REPO_ROOT / "blueprints" / "automation" / "city_ops")
    return config_dir


def _write_store(
    path: Path, key: str, data: dict[str, Any], *, version: int, minor_version: int
) -> None:
    """Write one file in HA's storage format (private, like HA's own)."""
    document = {"version": version, "minor_version": minor_version, "key": key, "data": data}
    path.write_text(json.dumps(document, indent=2), "utf-8")
    path.chmod(0o600)


def form_defaults(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """Return what HA's frontend would submit for a form left untouched.

    Required fields take their default, else the neutral choice of their selector
    (off, false, "off"); collapsed sections are filled the same way.
    """
    answer: dict[str, Any] = {}
    for field in fields:
        name = field["name"]
        if field.get("type") == "expandable":
            answer[name] = form_defaults(field.get("schema", []))
        elif "default" in field:
            answer[name] = field["default"]
        elif field.get("required"):
            selector = field.get("selector", {})
            if "boolean" in selector:
                answer[name] = False
            elif "select" in selector:
                options = [
                    option["value"] if isinstance(option, dict) else option
                    for option in selector["select"].get("options", [])
                ]
                answer[name] = "off" if "off" in options else options[0]
    return answer


def _http_status(url: str) -> int | None:
    """Return the status of a GET (None when nothing answers); stdlib only, no loop needed."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


class HomeAssistantClient:
    """A synchronous REST + WebSocket client for one Home Assistant.

    Runs aiohttp on a private event loop (never installed as the thread's current loop
    and never run in a thread), so callers stay plain synchronous code: the demo's main
    program and pytest tests alike.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        log_tail: Callable[[], str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Create a client; log_tail supplies log evidence for error messages."""
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.log_tail = log_tail or (lambda: "")
        self._loop = asyncio.new_event_loop()
        self._session: aiohttp.ClientSession | None = None

    # -- plumbing -------------------------------------------------------------------------

    def drop_connections(self) -> None:
        """Forget pooled HTTP connections: after hass restarted they lead nowhere."""
        if self._session is not None and not self._loop.is_closed():
            self._loop.run_until_complete(self._session.close())
            self._session = None

    def close(self) -> None:
        """Close the HTTP session and the private loop."""
        if self._loop.is_closed():
            return
        if self._session is not None:
            self._loop.run_until_complete(self._session.close())
            self._session = None
        self._loop.close()

    def __enter__(self) -> Self:
        """Return the client."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the client."""
        self.close()

    def _run[T](self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run coro on the private loop with a bounded wait."""
        limit = timeout or self.timeout
        try:
            return self._loop.run_until_complete(asyncio.wait_for(coro, limit))
        except TimeoutError as err:
            raise HomeAssistantError(
                f"no answer from {self.base_url} within {limit:.0f} s\n{self.log_tail()}"
            ) from err

    async def _http(self) -> aiohttp.ClientSession:
        """Return the session, created on the private loop on first use."""
        if self._session is None:
            # ThreadedResolver resolves nothing for IP hosts and starts no thread pool.
            connector = aiohttp.TCPConnector(resolver=aiohttp.ThreadedResolver())
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def _headers(self, token: str | None = None) -> dict[str, str]:
        """Return the Authorization header for token (or the client's token)."""
        use = token or self.token
        return {"Authorization": f"Bearer {use}"} if use else {}

    def send(
        self,
        method: str,
        path: str,
        *,
        json_data: Any = None,
        form: dict[str, str] | None = None,
        token: str | None = None,
        timeout: float | None = None,
    ) -> tuple[int, str]:
        """Send one REST request; return status and body text."""

        async def _go() -> tuple[int, str]:
            session = await self._http()
            async with session.request(
                method,
                f"{self.base_url}{path}",
                json=json_data,
                data=form,
                headers=self._headers(token),
            ) as response:
                return response.status, await response.text()

        return self._run(_go(), timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_data: Any = None,
        form: dict[str, str] | None = None,
        token: str | None = None,
        expect: tuple[int, ...] = (200, 201),
        timeout: float | None = None,
    ) -> Any:
        """Send one REST request and return its decoded JSON body; raise on other statuses."""
        status, body = self.send(
            method, path, json_data=json_data, form=form, token=token, timeout=timeout
        )
        if status not in expect:
            sent = json.dumps(json_data if json_data is not None else form)
            raise HomeAssistantError(
                f"{method} {path} sent {sent}\n-> HTTP {status}: {body[:2000]}\n{self.log_tail()}"
            )
        try:
            return json.loads(body) if body else None
        except json.JSONDecodeError:
            return body

    def ws(self, command: dict[str, Any], *, timeout: float | None = None) -> Any:
        """Send one WebSocket command on a fresh connection and return its result.

        A connection per command keeps the idle private loop from missing HA's heartbeats.
        """

        async def _go() -> Any:
            session = await self._http()
            # A large site's registry lists run to tens of MB: no message size limit.
            async with session.ws_connect(f"{self.base_url}/api/websocket", max_msg_size=0) as sock:
                hello = await sock.receive_json()
                if hello.get("type") != "auth_required":
                    raise HomeAssistantError(f"unexpected WebSocket greeting {hello}")
                await sock.send_json({"type": "auth", "access_token": self.token})
                auth = await sock.receive_json()
                if auth.get("type") != "auth_ok":
                    raise HomeAssistantError(f"WebSocket auth failed: {auth}")
                await sock.send_json({"id": 1, **command})
                while True:
                    message = await sock.receive_json()
                    if message.get("id") == 1 and message.get("type") == "result":
                        return message

        message = self._run(_go(), timeout)
        if not message.get("success"):
            raise HomeAssistantError(
                f"WebSocket {json.dumps(command)}\n-> {json.dumps(message.get('error'))}\n"
                f"{self.log_tail()}"
            )
        return message.get("result")

    # -- core API -------------------------------------------------------------------------

    def api_config(self) -> dict[str, Any]:
        """Return /api/config (location, components, state)."""
        return dict(self.request("GET", "/api/config"))

    def wait_until_running(self, timeout: float = 300.0) -> float:
        """Wait until HA's core state is RUNNING (all start-up done); return seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.api_config().get("state")
            if state == "RUNNING":
                return time.monotonic() - started
            time.sleep(0.5)
        raise HomeAssistantError(
            f"hass state is {state}, not RUNNING, after {timeout:.0f} s\n{self.log_tail()}"
        )

    def states(self) -> list[dict[str, Any]]:
        """Return all entity states."""
        return list(self.request("GET", "/api/states"))

    def state(self, entity_id: str) -> dict[str, Any] | None:
        """Return one entity's state object, or None when it has none."""
        found = self.request("GET", f"/api/states/{entity_id}", expect=(200, 404))
        return found if isinstance(found, dict) and "state" in found else None

    def wait_for_state(
        self,
        entity_id: str,
        accept: Callable[[str], bool] | str,
        *,
        timeout: float = 30.0,
        interval: float = 0.25,
    ) -> str:
        """Poll until entity_id's state is accepted; return that state."""
        check = (lambda value: value == accept) if isinstance(accept, str) else accept
        deadline = time.monotonic() + timeout
        last: str | None = None
        while time.monotonic() < deadline:
            found = self.state(entity_id)
            last = None if found is None else str(found["state"])
            if last is not None and check(last):
                return last
            time.sleep(interval)
        raise HomeAssistantError(
            f"{entity_id} stayed {last!r} for {timeout:.0f} s "
            f"(wanted {accept if isinstance(accept, str) else 'a matching state'})\n"
            f"{self.log_tail()}"
        )

    def call_service(
        self,
        domain: str,
        service: str,
        data: dict[str, Any] | None = None,
        *,
        return_response: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """Call a service; with return_response return its response data."""
        path = f"/api/services/{domain}/{service}"
        if return_response:
            path += "?return_response"
        result = self.request("POST", path, json_data=data or {}, timeout=timeout)
        return result.get("service_response") if return_response else result

    def render_template(self, template: str) -> str:
        """Render a template with /api/template; return the text."""
        status, body = self.send("POST", "/api/template", json_data={"template": template})
        if status != 200:
            raise HomeAssistantError(
                f"POST /api/template {template!r}\n-> HTTP {status}: {body[:2000]}\n"
                f"{self.log_tail()}"
            )
        return body

    def config_entry_diagnostics(self, entry_id: str) -> dict[str, Any]:
        """Return a config entry's diagnostics, as "Download diagnostics" would."""
        return dict(self.request("GET", f"/api/diagnostics/config_entry/{entry_id}"))

    def calendar_events(self, entity_id: str, start: datetime, end: datetime) -> list[Any]:
        """Return a calendar entity's events between start and end (aware datetimes)."""
        query = urllib.parse.urlencode({"start": start.isoformat(), "end": end.isoformat()})
        return list(self.request("GET", f"/api/calendars/{entity_id}?{query}"))

    # -- config entries and flows ---------------------------------------------------------

    def config_entries(self, domain: str | None = None) -> list[dict[str, Any]]:
        """Return config entries, optionally of one domain."""
        query = f"?domain={domain}" if domain else ""
        return list(self.request("GET", f"/api/config/config_entries/entry{query}"))

    def delete_config_entry(self, entry_id: str) -> None:
        """Remove a config entry."""
        self.request("DELETE", f"/api/config/config_entries/entry/{entry_id}")

    def start_config_flow(self, handler: str) -> dict[str, Any]:
        """Start a config flow for handler (a domain)."""
        return dict(
            self.request(
                "POST",
                "/api/config/config_entries/flow",
                json_data={"handler": handler, "show_advanced_options": False},
            )
        )

    def continue_config_flow(self, flow_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Submit one step of a config flow."""
        return dict(
            self.request("POST", f"/api/config/config_entries/flow/{flow_id}", json_data=data)
        )

    def start_subentry_flow(self, entry_id: str, subentry_type: str) -> dict[str, Any]:
        """Start a subentry flow (handler is [entry_id, subentry_type])."""
        return dict(
            self.request(
                "POST",
                "/api/config/config_entries/subentries/flow",
                json_data={"handler": [entry_id, subentry_type], "show_advanced_options": False},
            )
        )

    def continue_subentry_flow(self, flow_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Submit one step of a subentry flow."""
        return dict(
            self.request(
                "POST",
                f"/api/config/config_entries/subentries/flow/{flow_id}",
                json_data=data,
            )
        )

    def subentries(self, entry_id: str) -> list[dict[str, Any]]:
        """Return the subentries of a config entry."""
        return list(self.ws({"type": "config_entries/subentries/list", "entry_id": entry_id}))

    # -- registries -----------------------------------------------------------------------

    def entity_registry(self) -> list[dict[str, Any]]:
        """Return all entity registry entries."""
        return list(self.ws({"type": "config/entity_registry/list"}))

    def device_registry(self) -> list[dict[str, Any]]:
        """Return all device registry entries."""
        return list(self.ws({"type": "config/device_registry/list"}))

    def find_entities(
        self,
        *,
        platform: str = "city_ops",
        translation_key: str | None = None,
        domain: str | None = None,
        device_id: str | None = None,
        config_entry_id: str | None = None,
        config_subentry_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Return registry entries matching every given field."""
        wanted = {
            "platform": platform,
            "translation_key": translation_key,
            "device_id": device_id,
            "config_entry_id": config_entry_id,
            "config_subentry_id": config_subentry_id,
        }
        return [
            entry
            for entry in self.entity_registry()
            if all(value is None or entry.get(key) == value for key, value in wanted.items())
            and (domain is None or entry["entity_id"].startswith(f"{domain}."))
        ]

    def find_entity_id(
        self,
        translation_key: str,
        *,
        device_id: str | None = None,
        config_entry_id: str | None = None,
        config_subentry_id: str | None = None,
    ) -> str:
        """Return the one city_ops entity_id with translation_key and the given fields."""
        found = self.find_entities(
            translation_key=translation_key,
            device_id=device_id,
            config_entry_id=config_entry_id,
            config_subentry_id=config_subentry_id,
        )
        if len(found) != 1:
            raise HomeAssistantError(
                f"expected one entity with translation_key={translation_key} "
                f"(device {device_id}, entry {config_entry_id}, subentry {config_subentry_id}), "
                f"found {[entry['entity_id'] for entry in found]}\n{self.log_tail()}"
            )
        return str(found[0]["entity_id"])

    # -- auth -----------------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        """Return the IndieAuth client id HA's own frontend would use."""
        return f"{self.base_url}/"

    def token_works(self, token: str) -> bool:
        """Return whether token is accepted by the API."""
        return self.send("GET", "/api/", token=token)[0] == 200

    def exchange_auth_code(self, auth_code: str) -> str:
        """Trade an auth code for a short-lived access token."""
        tokens = self.request(
            "POST",
            "/auth/token",
            form={
                "grant_type": "authorization_code",
                "code": auth_code,
                "client_id": self.client_id,
            },
        )
        return str(tokens["access_token"])

    def login_trusted_network(self) -> str:
        """Log in the single user through the trusted_networks bypass; return an access token."""
        flow = self.request(
            "POST",
            "/auth/login_flow",
            json_data={
                "client_id": self.client_id,
                "handler": ["trusted_networks", None],
                "redirect_uri": f"{self.base_url}/?auth_callback=1",
            },
        )
        if flow.get("type") != "create_entry":
            raise HomeAssistantError(
                f"trusted_networks login did not bypass the login form: {flow}\n{self.log_tail()}"
            )
        return self.exchange_auth_code(str(flow["result"]))

    def create_long_lived_token(self, client_name: str) -> str:
        """Create a long-lived access token for the current user."""
        return str(
            self.ws(
                {
                    "type": "auth/long_lived_access_token",
                    "client_name": client_name,
                    "lifespan": TOKEN_LIFESPAN_DAYS,
                }
            )
        )

    def onboarding_done(self) -> dict[str, bool]:
        """Return onboarding steps and whether each is done."""
        steps = self.request("GET", "/api/onboarding", expect=(200, 404))
        if not isinstance(steps, list):
            # Once onboarding is complete HA no longer serves its views.
            return dict.fromkeys(ONBOARDING_STEPS, True)
        return {step["step"]: bool(step["done"]) for step in steps}

    def onboard(self) -> str:
        """Finish every open onboarding step; return an access token for the owner.

        The owner gets a random password nobody needs: on this machine the
        trusted_networks bypass logs the single user in.
        """
        done = self.onboarding_done()
        if not done.get("user"):
            created = self.request(
                "POST",
                "/api/onboarding/users",
                json_data={
                    "client_id": self.client_id,
                    "name": ONBOARDING_NAME,
                    "username": ONBOARDING_USER,
                    "password": secrets.token_urlsafe(24),
                    "language": "en",
                },
            )
            access = self.exchange_auth_code(str(created["auth_code"]))
        else:
            access = self.login_trusted_network()
        if not done.get("core_config"):
            self.request("POST", "/api/onboarding/core_config", json_data={}, token=access)
        if not done.get("analytics"):
            self.request("POST", "/api/onboarding/analytics", json_data={}, token=access)
        if not done.get("integration"):
            self.request(
                "POST",
                "/api/onboarding/integration",
                json_data={
                    "client_id": self.client_id,
                    "redirect_uri": f"{self.base_url}/?auth_callback=1",
                },
                token=access,
            )
        return access

    def authenticate(self, token_file: Path | None = None) -> str:
        """Make the client hold a working long-lived token: reuse, or onboard/log in and create one.

        token_file (git-ignored) keeps the token across runs of the demo.
        """
        if token_file is not None and token_file.exists():
            stored = token_file.read_text(encoding="utf-8").strip()
            if stored and self.token_works(stored) and all(self.onboarding_done().values()):
                self.token = stored
                return stored
        self.token = self.onboard()
        long_lived = self.create_long_lived_token(f"City Operations harness {int(time.time())}")
        self.token = long_lived
        if token_file is not None:
            token_file.write_text(long_lived + "\n", encoding="utf-8")
            token_file.chmod(0o600)
        return long_lived

    # -- MQTT -----------------------------------------------------------------------------

    def setup_mqtt(self, broker: str, port: int) -> str:
        """Point HA's MQTT integration at broker:port through its config flows; return entry id.

        An existing entry for another port (an earlier demo run) is reconfigured, not
        replaced: removing it would drop every other integration's subscriptions.
        """
        entries = self.config_entries("mqtt")
        if entries:
            entry_id = str(entries[0]["entry_id"])
            if self._mqtt_broker(entry_id) == (broker, port):
                self.wait_entry_loaded(entry_id)
                return entry_id
            result = dict(
                self.request(
                    "POST",
                    "/api/config/config_entries/flow",
                    json_data={"handler": "mqtt", "entry_id": entry_id},
                )
            )
        else:
            result = self.start_config_flow("mqtt")
        if result.get("type") == "form" and result.get("step_id") == "broker":
            answer = form_defaults(result.get("data_schema", [])) | {
                "broker": broker,
                "port": port,
            }
            result = self.continue_config_flow(str(result["flow_id"]), answer)
        if result.get("type") == "create_entry":
            entry_id = str(result["result"]["entry_id"])
        elif result.get("type") == "abort" and result.get("reason") == "reconfigure_successful":
            entry_id = str(entries[0]["entry_id"])
        else:
            raise HomeAssistantError(
                f"MQTT config flow for {broker}:{port} ended with {json.dumps(result)}\n"
                f"{self.log_tail()}"
            )
        self.wait_entry_loaded(entry_id)
        return entry_id

    def update_options(self, entry_id: str, changes: dict[str, Any]) -> None:
        """Run an entry's options flow as the UI would (untouched fields keep their values).

        A site reloads with new options; this returns once it is loaded again.
        """
        flow = self.request(
            "POST", "/api/config/config_entries/options/flow", json_data={"handler": entry_id}
        )
        data = {**form_defaults(flow["data_schema"]), **changes}
        done = self.request(
            "POST", f"/api/config/config_entries/options/flow/{flow['flow_id']}", json_data=data
        )
        if done.get("type") != "create_entry":
            raise HomeAssistantError(f"options flow of {entry_id} ended with {json.dumps(done)}")
        # The reload is scheduled: see the entry leave "loaded" (briefly), then come back.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
            entry["entry_id"] == entry_id and entry.get("state") == "loaded"
            for entry in self.config_entries()
        ):
            time.sleep(0.1)
        self.wait_entry_loaded(entry_id)

    def _mqtt_broker(self, entry_id: str) -> tuple[str, int] | None:
        """Return the broker host and port an MQTT entry uses (from its diagnostics)."""
        status, body = self.send("GET", f"/api/diagnostics/config_entry/{entry_id}")
        if status != 200:
            return None
        settings = json.loads(body).get("data", {}).get("mqtt_config", {}).get("data", {})
        if "broker" not in settings:
            return None
        return str(settings["broker"]), int(settings.get("port", 1883))

    def wait_entry_loaded(self, entry_id: str, timeout: float = 60.0) -> None:
        """Wait until a config entry reports state loaded."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = next(
                (
                    entry.get("state")
                    for entry in self.config_entries()
                    if entry["entry_id"] == entry_id
                ),
                None,
            )
            if state == "loaded":
                return
            time.sleep(0.25)
        raise HomeAssistantError(
            f"config entry {entry_id} is {state!r}, not loaded, after {timeout:.0f} s\n"
            f"{self.log_tail()}"
        )


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """One event as a WebSocket subscriber got it."""

    at: float  # time.monotonic() on arrival
    event_type: str
    data: dict[str, Any]
    raw: str  # the message exactly as it came over the wire


class HomeAssistantEvents:
    """Every event hass fires, over a WebSocket subscription kept up in a thread of its own.

    When hass goes away (a restart, a crash) the stream connects and subscribes again until
    it is closed, so a run that kills hass still sees what was fired while a connection stood.
    Subscribing to every event (no event_type) needs an admin's token.
    """

    def __init__(
        self, base_url: str, token: str, event_type: str | None = None, retry_s: float = 0.2
    ) -> None:
        """Start connecting at once; use wait_subscribed before relying on the stream."""
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._event_type = event_type
        self._retry_s = retry_s
        self._changed = threading.Condition()
        self._events: list[ReceivedEvent] = []
        self.subscriptions = 0  # successful subscriptions so far (one per connection)
        self.errors: list[str] = []  # why connections ended (kept for failure messages)
        self._loop = asyncio.new_event_loop()
        self._task = self._loop.create_task(self._follow())
        self._thread = threading.Thread(target=self._run, name="hass-events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            self._loop.close()

    async def _follow(self) -> None:
        connector = aiohttp.TCPConnector(resolver=aiohttp.ThreadedResolver())
        async with aiohttp.ClientSession(connector=connector) as session:
            while True:
                try:
                    await self._subscribe_and_read(session)
                except (aiohttp.ClientError, OSError, HomeAssistantError, ValueError) as err:
                    self.errors.append(f"{type(err).__name__}: {err}"[:300])
                await asyncio.sleep(self._retry_s)

    async def _subscribe_and_read(self, session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(f"{self.base_url}/api/websocket", heartbeat=20) as sock:
            hello = await sock.receive_json()
            if hello.get("type") != "auth_required":
                raise HomeAssistantError(f"unexpected WebSocket greeting {hello}")
            await sock.send_json({"type": "auth", "access_token": self._token})
            auth = await sock.receive_json()
            if auth.get("type") != "auth_ok":
                raise HomeAssistantError(f"WebSocket auth failed: {auth}")
            command: dict[str, Any] = {"id": 1, "type": "subscribe_events"}
            if self._event_type is not None:
                command["event_type"] = self._event_type
            await sock.send_json(command)
            async for message in sock:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                self._take(str(message.data))
            raise HomeAssistantError(f"WebSocket closed ({sock.close_code})")

    def _take(self, text: str) -> None:
        decoded = json.loads(text)
        # HA coalesces messages into a list only for clients that ask for it; accept both.
        for message in decoded if isinstance(decoded, list) else [decoded]:
            if message.get("id") != 1:
                continue
            if message.get("type") == "result":
                if not message.get("success"):
                    raise HomeAssistantError(f"subscribe_events refused: {message}")
                with self._changed:
                    self.subscriptions += 1
                    self._changed.notify_all()
            elif message.get("type") == "event":
                event = message.get("event") or {}
                received = ReceivedEvent(
                    time.monotonic(),
                    str(event.get("event_type")),
                    dict(event.get("data") or {}),
                    text if not isinstance(decoded, list) else json.dumps(message),
                )
                with self._changed:
                    self._events.append(received)
                    self._changed.notify_all()

    def events(self, event_type: str | None = None, since: float = 0.0) -> list[ReceivedEvent]:
        """Events received at or after since (time.monotonic()), of one type or all."""
        with self._changed:
            return [
                event
                for event in self._events
                if event.at >= since and event_type in (None, event.event_type)
            ]

    def wait_for(
        self,
        event_type: str,
        accept: Callable[[dict[str, Any]], bool] = lambda _data: True,
        *,
        since: float = 0.0,
        timeout: float = 30.0,
    ) -> ReceivedEvent:
        """Wait for an event of event_type (received since `since`) whose data is accepted."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self._events:
                    if event.at >= since and event.event_type == event_type and accept(event.data):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise HomeAssistantError(
                        f"no {event_type} event within {timeout:.0f} s "
                        f"(last connection errors: {self.errors[-3:]})"
                    )
                self._changed.wait(remaining)

    def wait_subscribed(self, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until the stream has subscribed `count` times (once per hass run)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.subscriptions < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise HomeAssistantError(
                        f"event subscription {count} not made within {timeout:.0f} s "
                        f"(last connection errors: {self.errors[-3:]})"
                    )
                self._changed.wait(remaining)

    def close(self) -> None:
        """Stop following and end the thread."""
        with contextlib.suppress(RuntimeError):  # the loop already ended
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)
