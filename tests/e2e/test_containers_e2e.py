"""End to end: MQTT uplinks through a real broker into a real hass, and the waste dashboard
rendered by Chromium."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
import json
from pathlib import Path
import time
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, Route, sync_playwright
import pytest

from demo import REPO_ROOT
from demo.broker import Broker
from demo.homeassistant import HomeAssistantClient, HomeAssistantError, HomeAssistantProcess
from demo.park import Park, run_park

pytestmark = pytest.mark.e2e

TTN_TOPIC = "v3/city-bins@ttn/devices/bin-0042/up"
SCREENSHOT = REPO_ROOT / "artifacts" / "screenshots" / "waste_view.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEW_ELEMENTS = "hui-sections-view, hui-masonry-view, hui-panel-view, hui-sidebar-view"
ERROR_TEXTS = (
    "Configuration error",
    "Entity not available",
    "Entity not found",
    "Error loading the dashboard strategy",  # the frontend says so in English only
    "Konfigurationsfehler",
    "Entität nicht gefunden",
)


def create_site(ha: HomeAssistantClient, name: str) -> str:
    """Create a site through the city_ops config flow; return its entry id."""
    result = ha.start_config_flow("city_ops")
    assert result["type"] == "form", result
    assert result["step_id"] == "user", result
    result = ha.continue_config_flow(result["flow_id"], {"name": name})
    assert result["type"] == "create_entry", result
    assert result["title"] == name
    entry_id = str(result["result"]["entry_id"])
    ha.wait_entry_loaded(entry_id)
    return entry_id


def wait_for(
    what: str, probe: Callable[[], Any], ha: HomeAssistantClient, timeout: float = 30.0
) -> Any:
    """Poll probe until it returns something truthy; fail with the log tail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.25)
    raise HomeAssistantError(f"timed out after {timeout:.0f} s waiting for {what}\n{ha.log_tail()}")


def publish_until(
    ha: HomeAssistantClient,
    publish: Callable[[str, dict[str, Any]], None],
    payload: dict[str, Any],
    entity_id: str,
    wanted: str,
    timeout: float = 30.0,
) -> None:
    """Publish an uplink until entity_id shows wanted.

    Republishing covers HA's MQTT subscribe debounce right after the entry (re)loaded;
    a repeated identical uplink is what a real sensor sends anyway.
    """
    deadline = time.monotonic() + timeout
    while True:
        publish(TTN_TOPIC, payload)
        try:
            ha.wait_for_state(entity_id, wanted, timeout=min(5.0, deadline - time.monotonic()))
        except HomeAssistantError:
            if time.monotonic() >= deadline:
                raise
            continue
        return


def uplink(distance_mm: int, battery: int) -> dict[str, Any]:
    """Return a The Things Stack v3 uplink of a Milesight EM310-UDL."""
    return {
        "end_device_ids": {"device_id": "bin-0042"},
        "uplink_message": {"decoded_payload": {"distance": distance_mm, "battery": battery}},
    }


CONTAINER = {
    "latitude": 53.7005,
    "longitude": 10.0021,
    "waste_kind": "residual",
    "volume_l": 1100,
    "depth_mm": 1200,
    "sensor_offset_mm": 100,
    "report_interval_s": 3600,
    "source_kind": "ttn",
}


def add_container(ha: HomeAssistantClient, entry_id: str, name: str, device: str) -> str:
    """Add a container through the subentry flow; return its subentry id."""
    result = ha.start_subentry_flow(entry_id, "container")
    assert result["type"] == "form", result
    assert result["step_id"] == "user", result
    result = ha.continue_subentry_flow(
        result["flow_id"], {**CONTAINER, "name": name, "device": device}
    )
    assert result["type"] == "create_entry", result
    return str(
        wait_for(
            f"the subentry of {name}",
            lambda: next(
                (
                    sub["subentry_id"]
                    for sub in ha.subentries(entry_id)
                    if sub["subentry_type"] == "container" and sub["title"] == name
                ),
                None,
            ),
            ha,
        )
    )


def test_ttn_uplinks_drive_container_entities(
    ha: HomeAssistantClient, publish: Callable[[str, dict[str, Any]], None]
) -> None:
    """A container costs one enabled entity; what its sensor reports appears when it does."""
    entry_id = create_site(ha, "E2E Park")
    subentry_id = add_container(ha, entry_id, "E2E Bin 42", "bin-0042")
    entities: dict[str, dict[str, Any]] = wait_for(
        "the container's entities",
        lambda: found if "fill_level" in (found := _registered(ha, subentry_id)) else None,
        ha,
    )
    devices = {entry["device_id"] for entry in entities.values()}
    assert len(devices) == 1, devices
    fill_level = entities["fill_level"]["entity_id"]
    assert ha.find_entity_id("fill_level", device_id=devices.pop()) == fill_level
    # The fill level only: derived values and the battery come with their first value.
    assert set(entities) == {"fill_level"}
    assert entities["fill_level"]["disabled_by"] is None

    # (1200 + 100 - 700) / 1200 = 50 %
    publish_until(ha, publish, uplink(700, 92), fill_level, "50.0")
    level = ha.state(fill_level) or {}
    assert level["attributes"]["battery"] == 92, level
    assert level["attributes"]["alarm"] == "none", level
    battery = wait_for(
        "the battery entity", lambda: _registered(ha, subentry_id).get("battery"), ha
    )
    assert battery["disabled_by"] == "integration", battery
    assert _registered(ha, subentry_id)["fill_state"]["disabled_by"] == "integration"
    assert "last_emptied" not in _registered(ha, subentry_id)  # never emptied yet

    # A second container joins without a reload: the first one's state is never rewritten.
    before = ha.state(fill_level) or {}
    second_id = add_container(ha, entry_id, "E2E Bin 43", "bin-0043")
    second = wait_for(
        "the second container's fill level",
        lambda: _registered(ha, second_id).get("fill_level", {}).get("entity_id"),
        ha,
    )
    assert ha.wait_for_state(second, "unknown") == "unknown"
    after = ha.state(fill_level) or {}
    assert after["last_updated"] == before["last_updated"], (before, after)

    # (1200 + 100 - 1250) / 1200 = 4.2 %: a drop of 45.8 points is an emptying, which
    # brings "last emptied" (disabled).
    publish_until(ha, publish, uplink(1250, 92), fill_level, "4.2")
    last = wait_for(
        "the last emptied entity", lambda: _registered(ha, subentry_id).get("last_emptied"), ha
    )
    assert last["disabled_by"] == "integration", last
    # An operator enables it and reloads the site: it shows the emptying from then on.
    ha.ws(
        {
            "type": "config/entity_registry/update",
            "entity_id": last["entity_id"],
            "disabled_by": None,
        }
    )
    ha.request("POST", f"/api/config/config_entries/entry/{entry_id}/reload")
    emptied = ha.wait_for_state(last["entity_id"], _is_timestamp, timeout=60)
    assert datetime.fromisoformat(emptied).tzinfo is not None


def _registered(ha: HomeAssistantClient, subentry_id: str) -> dict[str, dict[str, Any]]:
    """The subentry's entity registry entries by translation key (disabled ones too)."""
    return {
        entry["translation_key"]: entry
        for entry in ha.find_entities(config_subentry_id=subentry_id)
        if entry["translation_key"]
    }


def _is_timestamp(value: str) -> bool:
    """Return whether a state is an ISO timestamp."""
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def test_waste_dashboard_renders_demo_park(
    ha: HomeAssistantClient,
    hass_process: HomeAssistantProcess,
    broker: Broker,
    e2e_config_dir: Path,
) -> None:
    """The demo park imported and fed by the simulator renders without error cards."""
    asset_file = e2e_config_dir / "demo_park.geojson"
    features = json.loads(asset_file.read_text("utf-8"))["features"]
    names = [f["properties"]["name"] for f in features if f["properties"]["kind"] == "container"]
    entry_id = create_site(ha, "Stadtpark Norderstedt")
    response = ha.call_service(
        "city_ops",
        "import_assets",
        {"config_entry_id": entry_id, "path": "demo_park.geojson"},
        return_response=True,
        timeout=120,
    )
    assert sorted(response["added"]) == sorted(f["properties"]["name"] for f in features), response
    wait_for(
        f"{len(names)} fill_level entities",
        lambda: (
            len(ha.find_entities(config_entry_id=entry_id, translation_key="fill_level"))
            == len(names)
        ),
        ha,
        timeout=60,
    )

    park = Park.from_asset_file(asset_file)
    ticks = run_park(park, broker.host, broker.port, interval=1.0, duration=6.0)
    assert ticks >= 5
    fill_by_device = {
        entry["device_id"]: entry["entity_id"]
        for entry in ha.find_entities(config_entry_id=entry_id, translation_key="fill_level")
    }
    device_names = {device["id"]: device["name"] for device in ha.device_registry()}
    silent = park.silent.name if park.silent else None
    reporting = [
        entity_id
        for device_id, entity_id in fill_by_device.items()
        if device_names.get(device_id) != silent
    ]
    wait_for(
        "fill levels from the simulator",
        lambda: all(
            _is_number((ha.state(entity_id) or {}).get("state", "")) for entity_id in reporting
        ),
        ha,
    )

    # The frontend shows nothing but "Loading..." while get_services fails: say why up front.
    try:
        ha.ws({"type": "get_services"})
    except HomeAssistantError as err:
        pytest.fail(f"HA's frontend cannot load, websocket get_services fails:\n{err}")

    blocked: list[str] = []
    problems = render_waste_view(hass_process.base_url, blocked)
    print(f"\nscreenshot: {SCREENSHOT}; blocked off-host requests: {blocked[:5]}")
    assert problems == {}, problems


def _is_number(value: str) -> bool:
    """Return whether a state is numeric."""
    try:
        float(value)
    except ValueError:
        return False
    return True


def render_waste_view(
    base_url: str,
    blocked: list[str],
    view_path: str = "stadtpark-norderstedt-waste",
    screenshot: Path = SCREENSHOT,
) -> dict[str, int]:
    """Open a view (the waste view) in Chromium, save the screenshot, return error elements."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1300})
            context.route("**/*", keep_local(base_url, blocked))
            return open_view(context.new_page(), base_url, view_path, screenshot)
        finally:
            browser.close()


def keep_local(base_url: str, blocked: list[str]) -> Callable[[Route], None]:
    """A route handler that lets the browser talk to this hass only (blocked ones listed)."""
    own = urlsplit(base_url).netloc

    def handle(route: Route) -> None:
        # The browser must talk to nothing but this hass, and hass must not proxy map
        # tiles from openstreetmap.org on the browser's behalf.
        url = urlsplit(route.request.url)
        if url.scheme in ("http", "https", "ws", "wss") and (
            url.netloc != own or url.path.startswith("/api/map_tiles/")
        ):
            blocked.append(route.request.url)
            route.abort()
            return
        route.continue_()

    return handle


def open_view(page: Page, base_url: str, view_path: str, screenshot: Path) -> dict[str, int]:
    """Open a view of the City Operations dashboard, save a screenshot, count error elements."""
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.goto(f"{base_url}/city-operations/{view_path}", wait_until="domcontentloaded")
    _log_in_if_asked(page)
    page.wait_for_url(f"**/city-operations/{view_path}*", timeout=60_000)
    view = page.locator(VIEW_ELEMENTS).first
    try:
        view.wait_for(state="attached", timeout=60_000)
        page.locator("hui-card").first.wait_for(state="attached", timeout=30_000)
    finally:
        # Cards render lazily (history, map, todo list): give them a moment to settle,
        # and keep a picture of whatever the page shows even when it never loaded.
        page.wait_for_timeout(4_000)
        page.screenshot(path=str(screenshot))
    found = {"hui-error-card": page.locator("hui-error-card").count()}
    found["hui-warning"] = page.locator("hui-warning").count()
    for text in ERROR_TEXTS:
        found[text] = page.get_by_text(text).count()
    if any(found.values()):
        print("\nbrowser console:\n" + "\n".join(console[-30:]))
    return {name: count for name, count in found.items() if count}


def _log_in_if_asked(page: Page) -> None:
    """Pick the single user if the trusted_networks login still asks for one."""
    page.wait_for_load_state("networkidle", timeout=60_000)
    if "/auth/authorize" not in page.url:
        return
    submit = page.get_by_role("button", name="Log in")
    if submit.count():
        submit.first.click()
