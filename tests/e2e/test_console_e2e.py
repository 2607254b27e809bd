"""End to end: the operations console on a German installation, for a site that is not the demo.

A real hass (its own, in German: core language and the user's profile language) gets two sites
through the config flow, their assets through the subentry flows, and readings over MQTT.
Chromium opens the generated dashboard: every view names the site's assets, shows no error and
no English heading; one view again at phone size; a crew ticks and skips stops in the browser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
import io
import json
import re
import subprocess
import threading
import time
from typing import Any

import paho.mqtt.publish as mqtt_publish
from PIL import Image
from playwright.sync_api import Page, sync_playwright
import pytest

from custom_components.city_ops.console import MARKER_COLOURS
from demo import REPO_ROOT
from demo.broker import HOST, Broker
from demo.homeassistant import HomeAssistantClient, HomeAssistantProcess

from .conftest import MqttRecorder
from .test_containers_e2e import (
    CHROMIUM,
    CHROMIUM_ARGS,
    create_site,
    keep_local,
    open_view,
    wait_for,
)

pytestmark = pytest.mark.e2e

SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
SITE = "Friedhof Ohlsdorf"
OTHER_SITE = "Bürgerpark Harksheide"
SITE_PATH = "friedhof-ohlsdorf"
OTHER_PATH = "buergerpark-harksheide"
# name, TTN device, latitude, longitude, waste kind, distance (mm) -> fill level
CONTAINERS = [
    ("Kapelle Restmüll", "ohl-bin-1", 53.6230, 10.0510, "residual", 200),  # 91.7 %
    ("Haupttor Papier", "ohl-bin-2", 53.6236, 10.0540, "paper", 250),  # 87.5 %
    ("Teich Bioabfall", "ohl-bin-3", 53.6244, 10.0490, "organic", 1150),  # 12.5 %
]
# name, Zigbee2MQTT friendly name, latitude, longitude, path
MASTS = [
    ("Allee Mast 1", "ohl-mast-1", 53.6232, 10.0520, "Allee"),
    ("Allee Mast 2", "ohl-mast-2", 53.6238, 10.0525, "Allee"),
    ("Teich Mast 3", "ohl-mast-3", 53.6242, 10.0495, "Teichweg"),  # its lamp is dead
]
# Each luminaire's answer to the 30 % it is told (76 of 254); the dead lamp draws 0.4 W of 12.
LUMINAIRE = {"state": "ON", "brightness": 76}
DEAD_LAMP = {**LUMINAIRE, "power": 0.4}
BANK = "Ausleihe Kapelle"
BANK_DEVICE = "ohl-locker"
COMPARTMENTS = [
    {"number": 1, "item": "Rollator", "item_type": "walker"},
    {"number": 2, "item": "Bollerwagen", "item_type": "hand_cart"},
]
OTHER_CONTAINER = ("Spielplatz Restmüll", "bp-bin-1", 53.7080, 9.9920, "residual", 300)
GERMAN = {"language": "de", "number_format": "language", "time_format": "language"}
# What a card says when an entity it names is missing or unavailable (HA's own texts, and the
# state an unavailable entity shows): none of it may appear while every asset reports.
NOT_AVAILABLE = re.compile(r"nicht verfügbar|not available", re.IGNORECASE)


def strategy_texts() -> dict[str, dict[str, str]]:
    """The strategy module's own texts, as Node loads them."""
    empty = {"hass": {"locale": {"language": "de"}, "entities": {}, "devices": {}, "states": {}}}
    result = subprocess.run(
        ["node", str(REPO_ROOT / "tests" / "frontend" / "generate.mjs")],
        input=json.dumps(empty),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(result.stdout)["texts"])


def add_asset(ha: HomeAssistantClient, entry_id: str, kind: str, answer: dict[str, Any]) -> None:
    """Add an asset through its subentry flow, as the UI's "Add" dialog does."""
    result = ha.start_subentry_flow(entry_id, kind)
    assert result["type"] == "form", result
    result = ha.continue_subentry_flow(result["flow_id"], answer)
    assert result["type"] == "create_entry", result


def container_answer(name: str, device: str, lat: float, lon: float, kind: str) -> dict[str, Any]:
    return {
        "name": name,
        "latitude": lat,
        "longitude": lon,
        "waste_kind": kind,
        "volume_l": 1100,
        "depth_mm": 1200,
        "sensor_offset_mm": 100,
        "report_interval_s": 3600,
        "source_kind": "ttn",
        "device": device,
    }


class Publisher:
    """Devices of both sites speaking to the module's broker."""

    def __init__(self, broker: Broker) -> None:
        """Publish to broker."""
        self.port = broker.port

    def send(self, topic: str, payload: dict[str, Any], *, retain: bool = False) -> None:
        mqtt_publish.single(
            topic, json.dumps(payload), qos=1, retain=retain, hostname=HOST, port=self.port
        )

    def bin(self, device: str, distance_mm: int, **extra: Any) -> None:
        self.send(
            f"v3/friedhof@ttn/devices/{device}/up",
            {
                "end_device_ids": {"device_id": device},
                "uplink_message": {
                    "decoded_payload": {"distance": distance_mm, "battery": 88, **extra}
                },
            },
        )


@pytest.fixture(scope="module")
def german_sites(private_ha: HomeAssistantClient, private_broker: Broker) -> dict[str, Any]:
    """Two sites on a German installation, every asset added through the flows and reporting."""
    ha = private_ha
    ha.ws({"type": "config/core/update", "language": "de"})
    ha.ws({"type": "frontend/set_user_data", "key": "language", "value": GERMAN})
    entry_id = create_site(ha, SITE)
    for name, device, lat, lon, kind, _ in CONTAINERS:
        add_asset(ha, entry_id, "container", container_answer(name, device, lat, lon, kind))
    for number, (name, device, lat, lon, path) in enumerate(MASTS):
        add_asset(
            ha,
            entry_id,
            "mast",
            {
                "name": name,
                "latitude": lat,
                "longitude": lon,
                "path": path,
                "rated_power_w": 40,
                "neighbours": [MASTS[number - 1][0]] if number else [],
                "source_kind": "zigbee2mqtt",
                "device": device,
            },
        )
    add_asset(
        ha,
        entry_id,
        "locker_bank",
        {
            "name": BANK,
            "latitude": 53.6233,
            "longitude": 10.0505,
            "compartments": COMPARTMENTS,
            "pickup_window_min": 120,
            "loan_period_min": 240,
            "source_kind": "native",
            "device": BANK_DEVICE,
        },
    )
    other_id = create_site(ha, OTHER_SITE)
    add_asset(ha, other_id, "container", container_answer(*OTHER_CONTAINER[:5]))
    ha.wait_entry_loaded(entry_id)
    ha.wait_entry_loaded(other_id)

    devices = Publisher(private_broker)
    for compartment in COMPARTMENTS:
        devices.send(
            f"city_ops/{BANK_DEVICE}/compartment/{compartment['number']}/state",
            {"door": "closed", "locked": True, "item_present": True},
            retain=True,
        )
    fill = {
        (entry["device_id"]): entry["entity_id"]
        for entry in ha.find_entities(translation_key="fill_level")
    }
    names = {device["id"]: device["name"] for device in ha.device_registry()}
    fill_by_name = {names[device_id]: entity_id for device_id, entity_id in fill.items()}

    def all_reported() -> bool:
        for name, device, *_, distance in [*CONTAINERS, OTHER_CONTAINER]:
            extra = {"temperature": 78} if name == "Kapelle Restmüll" else {}
            devices.bin(device, distance, **extra)
        for name, device, *_ in MASTS:
            devices.send(f"zigbee2mqtt/{device}", {"occupancy": False, "illuminance": 2})
            # The luminaires answer what they are told (the dead one with its power).
            lamp = DEAD_LAMP if name == "Teich Mast 3" else LUMINAIRE
            devices.send(f"zigbee2mqtt/{device}", lamp)
        time.sleep(1)
        return all(
            (ha.state(fill_by_name[name]) or {}).get("state")
            not in (None, "unknown", "unavailable")
            for name, *_ in [*CONTAINERS, OTHER_CONTAINER]
        )

    wait_for("readings of every container", all_reported, ha, timeout=60)
    # The site adds its entities (and so the bank's device) in tiers: on a busy machine the
    # bank may come a moment after the fill levels.
    bank = wait_for(
        "the bank's device",
        lambda: next((d["id"] for d in ha.device_registry() if d["name"] == BANK), None),
        ha,
    )
    available = ha.find_entity_id("items_available", device_id=bank)
    ha.wait_for_state(available, str(len(COMPARTMENTS)), timeout=60)
    route = ha.find_entity_id("collection_route", config_entry_id=entry_id)
    wait_for("two stops on the route", lambda: (ha.state(route) or {}).get("state") == "2", ha)
    return {"entry_id": entry_id, "other_id": other_id, "route": route, "fill": fill_by_name}


@contextmanager
def german_page(
    base_url: str, width: int = 1440, height: int = 1300
) -> Iterator[tuple[Page, list[str]]]:
    """A Chromium page set to German that talks to this hass only (blocked requests listed)."""
    blocked: list[str] = []
    before = set(threading.enumerate())
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": width, "height": height}, locale="de-DE"
            )
            context.route("**/*", keep_local(base_url, blocked))
            yield context.new_page(), blocked
        finally:
            browser.close()
    # Playwright's loop lets its executor threads end after it closed; on a busy machine
    # they outlive the test, and phcc fails a test that leaves threads behind.
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=10)


def unavailable_texts(page: Page) -> list[str]:
    """Texts on the page (shadow roots included) that say something is not available."""
    found = page.get_by_text(NOT_AVAILABLE)
    return [text.strip() for text in found.all_inner_texts()]


def marker_colour(page: Page, name: str) -> tuple[int, int, int]:
    """The colour a person sees inside the map marker of the asset named so.

    The map card puts the name on the marker as its tooltip; the pixel is taken left of the
    number the marker shows.
    """
    picture = page.locator(f'ha-entity-marker[title="{name}"] .entity-picture').first
    picture.wait_for(state="visible", timeout=30_000)
    image = Image.open(io.BytesIO(picture.screenshot())).convert("RGB")
    red, green, blue = image.getpixel((3, image.height // 2))  # type: ignore[misc]
    return red, green, blue


def marker_state(ha: HomeAssistantClient, entity_id: str) -> str:
    """The marker state (`full`, `offline`, ...) the integration pictures for an entity."""
    picture = str((ha.state(entity_id) or {})["attributes"]["entity_picture"])
    return picture.split("/")[-2]


def close_to(colour: tuple[int, int, int], state: str) -> bool:
    """Whether a rendered colour is the marker colour of a state (JPEG-free PNG, so close)."""
    hex_colour = MARKER_COLOURS[state][0].lstrip("#")
    wanted = tuple(int(hex_colour[i : i + 2], 16) for i in (0, 2, 4))
    return all(abs(a - b) <= 8 for a, b in zip(colour, wanted, strict=True))


def headings(page: Page) -> list[str]:
    """The headings and card titles a person reads on the view."""
    found = page.locator("hui-heading-card .title, hui-entities-card .name, .card-header")
    return [text.strip() for text in found.all_inner_texts() if text.strip()]


@pytest.mark.parametrize(
    ("view", "names"),
    [
        ("waste", [name for name, *_ in CONTAINERS]),
        ("lighting", [name for name, *_ in MASTS]),
        ("lockers", [BANK, "Fach 1 · Rollator", "Fach 2 · Bollerwagen"]),
    ],
)
def test_every_view_of_the_german_site_names_its_assets(
    german_sites: dict[str, Any], private_hass: HomeAssistantProcess, view: str, names: list[str]
) -> None:
    texts = strategy_texts()
    english_only = {value for key, value in texts["en"].items() if value != texts["de"][key]}
    base_url = private_hass.base_url
    with german_page(base_url) as (page, _):
        shot = SCREENSHOTS / f"console_de_{view}.png"
        problems = open_view(page, base_url, f"{SITE_PATH}-{view}", shot)
        assert problems == {}, problems
        assert unavailable_texts(page) == []
        for name in names:
            assert page.get_by_text(name).count() > 0, name
        shown = headings(page)
        assert shown, "no headings found"
        assert not set(shown) & english_only, set(shown) & english_only
        # Nothing of the other site on this site's views.
        assert page.get_by_text(OTHER_CONTAINER[0]).count() == 0


def test_the_second_site_has_its_own_views(
    german_sites: dict[str, Any], private_hass: HomeAssistantProcess
) -> None:
    base_url = private_hass.base_url
    with german_page(base_url) as (page, _):
        shot = SCREENSHOTS / "console_de_second_site_waste.png"
        problems = open_view(page, base_url, f"{OTHER_PATH}-waste", shot)
        assert problems == {}, problems
        assert unavailable_texts(page) == []
        assert page.get_by_text(OTHER_CONTAINER[0]).count() > 0
        assert page.get_by_text(CONTAINERS[0][0]).count() == 0


def test_waste_view_on_a_phone(
    german_sites: dict[str, Any], private_hass: HomeAssistantProcess
) -> None:
    base_url = private_hass.base_url
    with german_page(base_url, width=390, height=844) as (page, _):
        shot = SCREENSHOTS / "console_de_phone_waste.png"
        problems = open_view(page, base_url, f"{SITE_PATH}-waste", shot)
        assert problems == {}, problems
        assert unavailable_texts(page) == []
        # The fire alarm comes first, then the route with the burning container flagged.
        assert page.get_by_text("Brandalarm").first.is_visible()
        assert page.get_by_text("Kapelle Restmüll · BRANDALARM").count() == 1


def test_the_waste_map_colours_each_container_by_its_state(
    german_sites: dict[str, Any],
    private_ha: HomeAssistantClient,
    private_hass: HomeAssistantProcess,
) -> None:
    fill = german_sites["fill"]
    states = {name: marker_state(private_ha, fill[name]) for name, *_ in CONTAINERS}
    # 91.7 % and 78 °C, 87.5 %, 12.5 %: a fire alarm, a full and a nearly empty container.
    assert states["Kapelle Restmüll"] == "alarm", states
    assert states["Haupttor Papier"] == "full", states
    assert states["Teich Bioabfall"] in ("ok", "empty"), states
    base_url = private_hass.base_url
    with german_page(base_url) as (page, _):
        open_view(page, base_url, f"{SITE_PATH}-waste", SCREENSHOTS / "console_de_waste_2.png")
        colours = {name: marker_colour(page, name) for name in states}
        page.locator("hui-map-card").first.screenshot(
            path=str(SCREENSHOTS / "console_de_waste_map.png")
        )
        # The legend shows the same pictures, with the words.
        assert page.locator('img[src="/city_ops/marker/full/92.svg"]').count() == 1
        assert page.get_by_text("Brand- oder Kippalarm").count() == 1
    for name, state in states.items():
        assert close_to(colours[name], state), (name, state, colours[name])
    assert colours["Haupttor Papier"] != colours["Teich Bioabfall"]


def send_until(
    what: str,
    send: Callable[[], None],
    done: Callable[[], Any],
    ha: HomeAssistantClient,
    timeout: float,
    every: float = 10.0,
) -> Any:
    """Send a device's report every few seconds (as a device does) until done() holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        send()
        next_send = time.monotonic() + every
        while time.monotonic() < min(next_send, deadline):
            if found := done():
                return found
            time.sleep(0.5)
    return wait_for(what, done, ha, timeout=1)


def mast_entities(ha: HomeAssistantClient) -> dict[str, dict[str, str]]:
    """Each mast's light and lamp fault sensor, by mast name (found by device and key)."""
    return {
        device["name"]: {
            key: ha.find_entity_id(key, device_id=device["id"]) for key in ("light", "lamp_fault")
        }
        for device in ha.device_registry()
        if device["name"] in {name for name, *_ in MASTS}
    }


def test_the_lighting_view_lists_each_problem_once_with_its_kind_and_the_savings_per_path(
    german_sites: dict[str, Any],
    private_ha: HomeAssistantClient,
    private_hass: HomeAssistantProcess,
    private_broker: Broker,
) -> None:
    ha = private_ha
    devices = Publisher(private_broker)
    masts = mast_entities(ha)
    lights = {name: entities["light"] for name, entities in masts.items()}
    dead = masts["Teich Mast 3"]["lamp_fault"]
    gone = masts["Allee Mast 2"]["lamp_fault"]

    # The dead lamp keeps reporting 0.4 W while told 30 %: a lamp failure after the grace.
    def flagged() -> bool:
        attributes = (ha.state(dead) or {}).get("attributes", {})
        return bool(attributes.get("fault_kind") == "lamp_failure")

    send_until(
        "the dead lamp to be flagged",
        lambda: devices.send(f"zigbee2mqtt/{MASTS[2][1]}", DEAD_LAMP),
        flagged,
        ha,
        timeout=300,
    )
    since = str((ha.state(dead) or {})["attributes"]["since"])
    # Savings of each path, counted on the minute tick once the masts burn in the dark.
    savings = {
        str((ha.state(entity["entity_id"]) or {})["attributes"]["path"]): entity["entity_id"]
        for entity in ha.find_entities(
            translation_key="path_savings", config_entry_id=german_sites["entry_id"]
        )
    }
    assert sorted(savings) == ["Allee", "Teichweg"], savings
    for entity_id in savings.values():
        ha.wait_for_state(entity_id, lambda value: value.replace(".", "").isdigit(), timeout=150)

    # Mast 1 burns at its base level; Zigbee2MQTT says mast 2 is gone, and while it is away
    # it is boosted and asked on the minute tick whether it heard that: it cannot answer.
    questions = MqttRecorder(
        HOST, private_broker.port, f"zigbee2mqtt/{MASTS[1][1]}/get", "e2e-console-get"
    )
    try:
        devices.send(f"zigbee2mqtt/{MASTS[0][1]}", LUMINAIRE)
        devices.send(f"zigbee2mqtt/{MASTS[1][1]}/availability", {"state": "offline"}, retain=True)
        ha.wait_for_state(lights["Allee Mast 2"], "unavailable", timeout=30)
        away = time.monotonic()
        ha.call_service("city_ops", "boost", {"entity_id": lights["Allee Mast 2"], "radius": 0})
        wait_for("mast 2 to be asked again", lambda: questions.since(away), ha, timeout=90)
    finally:
        questions.close()
    assert (ha.state(gone) or {})["attributes"]["fault_kind"] == "no_communication"
    wait_for(
        "mast 1 to burn",
        lambda: marker_state(ha, lights["Allee Mast 1"]) in ("base", "boosted"),
        ha,
    )
    states = {name: marker_state(ha, entity_id) for name, entity_id in lights.items()}
    assert states["Allee Mast 2"] == "offline", states
    assert states["Teich Mast 3"] == "fault", states
    base_url = private_hass.base_url
    try:
        with german_page(base_url, height=2400) as (page, _):
            problems = open_view(
                page, base_url, f"{SITE_PATH}-lighting", SCREENSHOTS / "console_de_lighting_map.png"
            )
            assert problems == {}, problems
            colours = {name: marker_colour(page, name) for name in states}
            page.locator("hui-map-card").first.screenshot(
                path=str(SCREENSHOTS / "console_de_lighting_markers.png")
            )
            # The mast that is gone: once, under not reporting, with since-when.
            offline = page.locator("hui-entities-card").filter(has_text="Melden nicht")
            assert offline.count() == 1
            assert offline.first.get_by_text("Allee Mast 2").count() == 1
            # Hidden cards stay in the page: only what a person sees counts.
            assert page.get_by_text("Keine Verbindung").filter(visible=True).count() == 0
            # The dead lamp: its kind and since when, in German; the only fault shown. (A tile
            # keeps its texts in its shadow root: read the state line, find the tile by it.)
            kind = page.locator("state-display").filter(has_text="Lampenausfall")
            fault = page.locator("hui-tile-card").filter(visible=True).filter(has=kind)
            assert fault.count() == 1
            shown = fault.first.locator("state-display").first.inner_text()
            assert re.search(r"Lampenausfall · .*\d{1,2}:\d{2}", shown), shown
            assert fault.first.get_by_text("Teich Mast 3").count() == 1
            assert page.get_by_text("Leuchtenstörungen").filter(visible=True).count() == 1
            # Savings now for the site and each path, each with the start of counting.
            for name in ("Standort", "Weg Allee", "Weg Teichweg"):
                tile = page.locator("hui-tile-card").filter(has_text=f"Ersparnis · {name}")
                tile = tile.filter(visible=True)
                assert tile.count() == 1, name
                shown = tile.first.locator("state-display").first.inner_text()
                assert re.search(r"\d+(,\d)? ?% · .*\d{1,2}:\d{2}", shown), shown
            # Over time: the week's savings graph and the daily energy per path.
            for title in (
                "Ersparnis seit Zählbeginn, letzte 7 Tage",
                "Standort: Energie pro Tag",
                "Weg Allee: Energie pro Tag",
                "Weg Teichweg: Energie pro Tag",
            ):
                assert page.get_by_text(title).filter(visible=True).count() == 1, title
            energy = page.locator("hui-heading-card").filter(has_text="Energie und Ersparnis")
            energy.first.scroll_into_view_if_needed()
            page.wait_for_timeout(2_000)
            page.screenshot(path=str(SCREENSHOTS / "console_de_lighting_savings.png"))
    finally:
        devices.send(f"zigbee2mqtt/{MASTS[1][1]}/availability", {"state": "online"}, retain=True)
    for name, state in states.items():
        assert close_to(colours[name], state), (name, state, colours[name])
    assert colours["Allee Mast 1"] != colours["Allee Mast 2"]
    # Back: its fault goes at once (before its luminaire has even answered), and stays gone
    # once it answers the level it is told again.
    ha.wait_for_state(lights["Allee Mast 2"], lambda value: value != "unavailable", timeout=30)
    ha.wait_for_state(gone, "off", timeout=10)
    devices.send(f"zigbee2mqtt/{MASTS[1][1]}", LUMINAIRE)
    time.sleep(5)
    assert (ha.state(gone) or {})["state"] == "off"
    assert (ha.state(dead) or {})["attributes"]["since"] == since


def test_the_lockers_view_puts_pickups_returns_and_open_doors_first(
    german_sites: dict[str, Any],
    private_ha: HomeAssistantClient,
    private_hass: HomeAssistantProcess,
    private_broker: Broker,
) -> None:
    ha = private_ha
    devices = Publisher(private_broker)
    bank = next(device["id"] for device in ha.device_registry() if device["name"] == BANK)
    loan_states = {
        entity["entity_id"]: ha.state(entity["entity_id"])
        for entity in ha.find_entities(translation_key="loan_state", device_id=bank)
    }
    by_number = {
        int(state["attributes"]["compartment"]): entity_id
        for entity_id, state in loan_states.items()
        if state
    }

    def reserve(number: int) -> dict[str, Any]:
        return dict(
            ha.call_service(
                "city_ops",
                "reserve",
                {"device_id": bank, "compartment": number, "borrower": f"e2e-{number}"},
                return_response=True,
            )
        )

    # Compartment 1: collected with its code, now on loan, its door left open.
    first = reserve(1)
    ha.wait_for_state(by_number[1], "reserved")
    devices.send(f"city_ops/{BANK_DEVICE}/keypad", {"code": first["code"]})
    time.sleep(1.0)
    devices.send(
        f"city_ops/{BANK_DEVICE}/compartment/1/state",
        {"door": "open", "locked": False, "item_present": False},
        retain=True,
    )
    ha.wait_for_state(by_number[1], "on_loan")
    # Compartment 2: reserved, waiting for its pickup.
    reserve(2)
    ha.wait_for_state(by_number[2], "reserved")
    due_back = str((ha.state(by_number[1]) or {})["attributes"]["loan_until"])
    base_url = private_hass.base_url
    for width, height, shot in (
        (1440, 1300, "console_de_lockers_busy.png"),
        (390, 844, "console_de_phone_lockers.png"),
    ):
        with german_page(base_url, width=width, height=height) as (page, _):
            problems = open_view(page, base_url, f"{SITE_PATH}-lockers", SCREENSHOTS / shot)
            assert problems == {}, problems
            # Soonest first: the pickup (window of hours) before the return (loan of hours).
            items = page.locator("hui-markdown-card li").all_inner_texts()
            rows = [row for row in items if " bis · " in row]
            assert len(rows) == 2, rows
            assert "Abholung bis" in rows[0], rows
            assert "Fach 2 · Bollerwagen" in rows[0], rows
            assert "Rückgabe bis" in rows[1], rows
            assert f"{BANK} · Fach 1 · Rollator" in rows[1], rows
            # The open door is listed under what needs attention.
            assert page.get_by_text("Offene Türen").count() == 1
            # Each compartment's tile says what it does and until when (the due-back time).
            tile = page.locator("hui-tile-card state-display").filter(has_text="Ausgeliehen")
            assert tile.count() == 1
            assert re.search(r"Ausgeliehen · .*\d{2}:\d{2}", tile.first.inner_text()), (
                tile.first.inner_text()
            )
    assert due_back.startswith("20"), due_back


def outside[T](call: Callable[[], T]) -> T:
    """Run a client call in a thread of its own: Playwright's loop runs in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


def route_items(ha: HomeAssistantClient, route: str) -> dict[str, list[dict[str, Any]]]:
    response = outside(
        lambda: ha.call_service("todo", "get_items", {"entity_id": route}, return_response=True)
    )
    items = response[route]["items"]
    return {
        status: [item for item in items if item["status"] == status]
        for status in ("needs_action", "completed")
    }


def test_a_crew_ticks_and_skips_stops_in_the_browser(
    german_sites: dict[str, Any],
    private_ha: HomeAssistantClient,
    private_hass: HomeAssistantProcess,
    private_broker: Broker,
) -> None:
    ha = private_ha
    route = german_sites["route"]
    kapelle_level = german_sites["fill"]["Kapelle Restmüll"]
    due = ha.find_entity_id("containers_due", config_entry_id=german_sites["entry_id"])
    open_stops = [item["summary"] for item in route_items(ha, route)["needs_action"]]
    assert sorted(open_stops) == ["Haupttor Papier", "Kapelle Restmüll · BRANDALARM"], open_stops
    base_url = private_hass.base_url
    with german_page(base_url) as (page, _):
        shot = SCREENSHOTS / "console_de_route_before.png"
        problems = open_view(page, base_url, f"{SITE_PATH}-waste", shot)
        assert problems == {}, problems
        stops = page.locator("hui-todo-list-card ha-check-list-item")

        # Tick: the checkbox of the burning container's stop.
        stops.filter(has_text="Kapelle Restmüll").locator("ha-checkbox, md-checkbox").first.click()
        wait_for(
            "the ticked stop to leave the route",
            lambda: (
                [i["summary"] for i in route_items(ha, route)["needs_action"]]
                == ["Haupttor Papier"]
            ),
            ha,
        )
        done = route_items(ha, route)["completed"]
        assert [item["summary"] for item in done] == ["Kapelle Restmüll"]
        # Who and when: the crew member's name and the time of the tick.
        assert re.match(r"Geleert von \S.* \d", done[0]["description"]), done[0]
        # The emptied container's sensor speaks next: low, cool, green on the map.
        Publisher(private_broker).bin("ohl-bin-1", 1150, temperature=12)
        outside(lambda: ha.wait_for_state(kapelle_level, "12.5"))
        page.wait_for_timeout(1_500)
        assert close_to(marker_colour(page, "Kapelle Restmüll"), "ok") or close_to(
            marker_colour(page, "Kapelle Restmüll"), "empty"
        )
        assert page.get_by_text("Brandalarm").count() == 0

        # Skip: open the other stop, write why, save.
        stops.filter(has_text="Haupttor Papier").locator(".summary").click()
        description = page.locator("dialog-todo-item-editor ha-textarea textarea").first
        description.wait_for(state="visible", timeout=10_000)
        description.fill(description.input_value() + "\nZugeparkt")
        page.get_by_role("button", name="Eintrag speichern").click()
        wait_for(
            "the skipped stop to leave the route",
            lambda: route_items(ha, route)["needs_action"] == [],
            ha,
        )
        page.wait_for_timeout(2_000)
        page.screenshot(path=str(SCREENSHOTS / "console_de_route_after.png"))
        assert page.get_by_text("Zugeparkt").count() > 0
    done_by_name = {
        item["summary"]: item["description"] for item in route_items(ha, route)["completed"]
    }
    assert done_by_name["Haupttor Papier"].endswith(": Zugeparkt"), done_by_name
    assert ha.wait_for_state(due, "0") == "0"


def test_the_same_view_in_english_for_an_english_profile(
    german_sites: dict[str, Any],
    private_ha: HomeAssistantClient,
    private_hass: HomeAssistantProcess,
) -> None:
    english = {**GERMAN, "language": "en"}
    private_ha.ws({"type": "frontend/set_user_data", "key": "language", "value": english})
    base_url = private_hass.base_url
    try:
        with german_page(base_url) as (page, _):
            shot = SCREENSHOTS / "console_en_lighting.png"
            problems = open_view(page, base_url, f"{SITE_PATH}-lighting", shot)
            assert problems == {}, problems
            assert "Needs attention" in headings(page)
    finally:
        private_ha.ws({"type": "frontend/set_user_data", "key": "language", "value": GERMAN})
