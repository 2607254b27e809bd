"""End to end: park lighting masts on a real broker and a real hass, the motion lighting
blueprint as a real automation, and the Lighting view of the demo park rendered by Chromium."""

from __future__ import annotations

from collections.abc import Callable
import json
from pathlib import Path
import threading
import time
from typing import Any

import pytest

from demo import REPO_ROOT
from demo.broker import Broker
from demo.homeassistant import HomeAssistantClient, HomeAssistantError, HomeAssistantProcess
from demo.park import Park, run_park

from .conftest import Zigbee2MqttCommands
from .test_containers_e2e import create_site, render_waste_view, wait_for

pytestmark = pytest.mark.e2e

MASTS = 6
HOLD_S = 5
BOOST = {"state": "ON", "brightness": 254, "transition": 1.0}  # boost 100 %, transition up 1 s
BASE = {"state": "ON", "brightness": 76, "transition": 5.0}  # base 30 %, transition down 5 s
DEMO_SITE = "Stadtpark Norderstedt"  # the name the dashboard's site entity ids come from
SCREENSHOT = REPO_ROOT / "artifacts" / "screenshots" / "lighting_view.png"


def device(number: int) -> str:
    """The Zigbee2MQTT friendly name of mast <number>."""
    return f"e2e-mast-{number}"


def add_mast(ha: HomeAssistantClient, entry_id: str, number: int) -> str:
    """Add mast <number> through the mast subentry flow; return its subentry id.

    The masts stand in a row along one path; each names the one before it as neighbour
    (the site makes the graph symmetric).
    """
    result = ha.start_subentry_flow(entry_id, "mast")
    assert result["type"] == "form", result
    name = f"E2E Mast {number}"
    answer: dict[str, Any] = {
        "name": name,
        "latitude": 53.7010 + number * 0.0004,
        "longitude": 10.0050,
        "path": "E2E-Weg",
        "rated_power_w": 40,
        "neighbours": [f"E2E Mast {number - 1}"] if number > 1 else [],
        "source_kind": "zigbee2mqtt",
        "device": device(number),
    }
    result = ha.continue_subentry_flow(result["flow_id"], answer)
    assert result["type"] == "create_entry", result
    ha.wait_entry_loaded(entry_id)
    return str(
        wait_for(
            f"the subentry of {name}",
            lambda: next(
                (s["subentry_id"] for s in ha.subentries(entry_id) if s["title"] == name), None
            ),
            ha,
        )
    )


def mast_entities(ha: HomeAssistantClient, subentry_id: str) -> dict[str, str] | None:
    """A mast's registered entity ids by translation key ("light" for its light), once it has one.

    Motion and illuminance are registered with the first report that carries them.
    """
    found: dict[str, str] = {}
    for entry in ha.find_entities(config_subentry_id=subentry_id):
        domain = entry["entity_id"].split(".")[0]
        found["light" if domain == "light" else entry["translation_key"]] = entry["entity_id"]
    return found if "light" in found else None


def report(
    ha: HomeAssistantClient,
    publish: Callable[[str, dict[str, Any]], None],
    number: int,
    subentry_id: str,
    *,
    occupancy: bool,
) -> dict[str, str]:
    """Mast <number>'s PIR reports, with 2 lx from its light sensor, until hass has it.

    Republishing covers HA's MQTT subscribe debounce right after the site changed; a PIR
    repeats its report anyway. The motion sensor exists from the first report on; the
    illuminance sensor too, disabled by default (no state). Returns the mast's entities.
    """
    payload = {"occupancy": occupancy, "illuminance": 2, "linkquality": 120}
    wanted = "on" if occupancy else "off"

    def arrived() -> bool:
        entities = mast_entities(ha, subentry_id) or {}
        motion = ha.state(entities["motion"]) if "motion" in entities else None
        return (motion or {}).get("state") == wanted and "illuminance" in entities

    deadline = time.monotonic() + 30
    while True:
        publish(f"zigbee2mqtt/{device(number)}", payload)
        try:
            wait_for(f"{device(number)} reporting", arrived, ha, timeout=3)
        except HomeAssistantError:
            if time.monotonic() > deadline:
                raise
            continue
        return mast_entities(ha, subentry_id) or {}


def test_motion_boosts_the_corridor_and_the_hold_ends_at_base(
    ha: HomeAssistantClient,
    publish: Callable[[str, dict[str, Any]], None],
    z2m_commands: Zigbee2MqttCommands,
) -> None:
    """Motion at mast 3 lights masts 2-4 to 100 %; 5 s after it ends they are back at 30 %."""
    entry_id = create_site(ha, "E2E Lighting")
    subentries = dict(enumerate((add_mast(ha, entry_id, n) for n in range(1, MASTS + 1)), 1))
    for number, sub in subentries.items():
        wait_for(f"the light of mast {number}", lambda s=sub: mast_entities(ha, s), ha)

    # Every light sensor reads 2 lx, under the site's 20 lx threshold: the masts count as
    # dark whatever the sun does. They go to the base level (at the latest on the minute tick).
    masts: dict[int, dict[str, str]] = {
        number: report(ha, publish, number, sub, occupancy=False)
        for number, sub in subentries.items()
    }
    for number, entities in masts.items():
        wait_for(
            f"mast {number} dark and at base level",
            lambda e=entities: (
                (attrs := (ha.state(e["light"]) or {}).get("attributes", {})).get("dark") is True
                and attrs.get("commanded_level") == 30
            ),
            ha,
            timeout=90,
        )

    ours = {device(number) for number in masts}
    wait_for(
        "the base level commands of all masts on the broker",
        lambda: (
            {c.device for c in z2m_commands.since(0, ours) if c.payload.get("brightness") == 76}
            == ours
        ),
        ha,
    )

    motion_sensors = [masts[number]["motion"] for number in range(1, MASTS + 1)]
    ha.request(
        "POST",
        "/api/config/automation/config/e2e_motion_lighting",
        json_data={
            "alias": "E2E motion lighting",
            "description": "motion_lighting blueprint on the E2E masts",
            "use_blueprint": {
                "path": "city_ops/motion_lighting.yaml",
                "input": {"motion_sensors": motion_sensors, "radius": 1, "hold": HOLD_S},
            },
        },
    )
    ha.wait_for_state("automation.e2e_motion_lighting", "on")

    started = time.monotonic()
    report(ha, publish, 3, subentries[3], occupancy=True)
    corridor = {device(2), device(3), device(4)}
    wait_for(
        "boost commands for masts 2, 3 and 4",
        lambda: {c.device for c in z2m_commands.since(started, ours)} >= corridor,
        ha,
        timeout=15,
    )
    time.sleep(1)  # anything else the motion would have caused arrives by now
    boosts = z2m_commands.since(started, ours)
    assert sorted((c.device, c.payload) for c in boosts) == [(d, BOOST) for d in sorted(corridor)]

    ended = time.monotonic()
    report(ha, publish, 3, subentries[3], occupancy=False)
    wait_for(
        "base level commands for masts 2, 3 and 4",
        lambda: {c.device for c in z2m_commands.since(ended, ours)} >= corridor,
        ha,
        timeout=HOLD_S + 30,
    )
    time.sleep(1)
    after = z2m_commands.since(ended, ours)
    assert sorted((c.device, c.payload) for c in after) == [(d, BASE) for d in sorted(corridor)]
    # The hold counts from the end of the motion (a little less: the report took a moment).
    assert min(c.at for c in after) - ended >= HOLD_S - 1, [c.at - ended for c in after]
    # Nothing at all for masts 1, 5 and 6 since the motion.
    assert [c for c in z2m_commands.since(started, ours) if c.device not in corridor] == []

    # A seventh mast joins the path without a site reload: no other light is written again (a
    # reload takes every light unavailable and back) and only the new mast is commanded.
    lights = {number: entities["light"] for number, entities in masts.items()}
    before = {
        number: (ha.state(light) or {}).get("last_updated") for number, light in lights.items()
    }
    joined = time.monotonic()
    seventh = add_mast(ha, entry_id, MASTS + 1)
    wait_for("the light of the seventh mast", lambda: mast_entities(ha, seventh), ha)
    wait_for(
        "the seventh mast's first command",
        lambda: z2m_commands.since(joined, {device(MASTS + 1)}),
        ha,
        timeout=30,
    )
    time.sleep(1)
    after_join = {
        number: (ha.state(light) or {}).get("last_updated") for number, light in lights.items()
    }
    assert after_join == before, (before, after_join)
    assert z2m_commands.since(joined, ours) == []


def demo_site(ha: HomeAssistantClient, asset_file: Path) -> str:
    """The demo park's site with every asset of its file (made by the waste test, if it ran)."""
    entry_id = next(
        (e["entry_id"] for e in ha.config_entries("city_ops") if e["title"] == DEMO_SITE), None
    ) or create_site(ha, DEMO_SITE)
    features = json.loads(asset_file.read_text("utf-8"))["features"]
    wanted = {(f["properties"]["kind"], f["properties"]["name"]) for f in features}
    if not wanted <= {(s["subentry_type"], s["title"]) for s in ha.subentries(entry_id)}:
        ha.call_service(
            "city_ops",
            "import_assets",
            {"config_entry_id": entry_id, "path": asset_file.name},
            return_response=True,
            timeout=120,
        )
        ha.wait_entry_loaded(entry_id)
    return str(entry_id)


def test_lighting_view_renders_demo_park(
    ha: HomeAssistantClient,
    hass_process: HomeAssistantProcess,
    broker: Broker,
    e2e_config_dir: Path,
) -> None:
    """The demo park's masts, lit by the simulator's walkers, render without error cards."""
    asset_file = e2e_config_dir / "demo_park.geojson"
    entry_id = demo_site(ha, asset_file)
    masts = [
        f["properties"]["name"]
        for f in json.loads(asset_file.read_text("utf-8"))["features"]
        if f["properties"]["kind"] == "mast"
    ]
    wait_for(
        f"{len(masts)} mast subentries",
        lambda: (
            len([s for s in ha.subentries(entry_id) if s["subentry_type"] == "mast"]) == len(masts)
        ),
        ha,
    )
    lights = wait_for(
        f"{len(masts)} lights",
        lambda: (
            found
            if len(found := ha.find_entities(config_entry_id=entry_id, domain="light"))
            == len(masts)
            else None
        ),
        ha,
        timeout=60,
    )
    # The walkers stroll and the luminaires answer while the view is rendered, as in the demo.
    park = Park.from_asset_file(asset_file)
    stop = threading.Event()
    walk = threading.Thread(
        target=run_park,
        args=(park, broker.host, broker.port),
        kwargs={"interval": 1.0, "stop": stop},
        name="demo-park",
    )
    walk.start()
    try:
        # Lit: dark by the simulated 2 lx (at the latest on the minute tick), then boosted.
        wait_for(
            "a demo mast at boost",
            lambda: any(
                (ha.state(e["entity_id"]) or {}).get("attributes", {}).get("commanded_level") == 100
                for e in lights
            ),
            ha,
            timeout=120,
        )
        time.sleep(5)
        blocked: list[str] = []
        problems = render_waste_view(
            hass_process.base_url,
            blocked,
            view_path="stadtpark-norderstedt-lighting",
            screenshot=SCREENSHOT,
        )
    finally:
        stop.set()
        walk.join(30)
    states = {e["entity_id"]: ha.state(e["entity_id"]) or {} for e in lights}
    print(
        "\nlights: "
        + ", ".join(
            f"{entity_id.removeprefix('light.')}={state.get('state')}/"
            f"{state.get('attributes', {}).get('commanded_level')}"
            for entity_id, state in sorted(states.items())
        )
    )
    print(f"\nscreenshot: {SCREENSHOT}; blocked off-host requests: {blocked[:5]}")
    assert problems == {}, problems
