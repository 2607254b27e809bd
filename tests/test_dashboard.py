"""The City Operations dashboard (and the demo's automation) names only entities that the demo
park really has."""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import slugify
from homeassistant.util.yaml import load_yaml, load_yaml_dict
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.const import (
    DEFAULT_FULL_THRESHOLD,
    DOMAIN,
    TOPIC_DEFAULTS_DATA,
)
from custom_components.city_ops.model.assets import Asset, parse_asset_file

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "dashboards" / "city_operations.yaml"
DEMO_PARK = ROOT / "config" / "demo_park.geojson"
DEMO_AUTOMATIONS = ROOT / "config" / "automations.yaml"
SITE = "Stadtpark Norderstedt"  # the demo site's name (configuration.yaml, scripts/demo)
CONTAINER_ENTITIES = {
    "sensor": (
        "fill_level",
        "fill_state",
        "last_emptied",
        "predicted_full",
        "battery",
        "temperature",
    ),
    "binary_sensor": ("fire_alarm", "tilt"),
}
# A mast's light has no name of its own: it is named after the mast (translation key "light").
MAST_ENTITIES = {
    "binary_sensor": ("motion", "lamp_fault"),
    "sensor": ("illuminance", "power", "energy"),
}
SITE_ENTITIES = {
    "sensor": ("containers_due", "lighting_energy", "lighting_savings"),
    "todo": ("collection_route",),
}


def demo_assets() -> list[Asset]:
    return parse_asset_file(json.loads(DEMO_PARK.read_text(encoding="utf-8")))


def dashboard() -> dict[str, Any]:
    return load_yaml_dict(DASHBOARD)


def expected_entity_ids(assets: list[Asset]) -> set[str]:
    """Entity ids as Home Assistant derives them: device name + entity name, slugified."""
    ids = {
        f"{domain}.{slugify(f'{SITE} {key}')}"
        for domain, keys in SITE_ENTITIES.items()
        for key in keys
    }
    for asset in assets:
        if asset.kind == "mast":
            ids.add(f"light.{slugify(asset.name)}")
        per_kind = MAST_ENTITIES if asset.kind == "mast" else CONTAINER_ENTITIES
        for domain, keys in per_kind.items():
            ids.update(f"{domain}.{slugify(f'{asset.name} {key}')}" for key in keys)
    return ids


def masts() -> list[Asset]:
    return [asset for asset in demo_assets() if asset.kind == "mast"]


def containers() -> list[Asset]:
    return [asset for asset in demo_assets() if asset.kind == "container"]


def view(path: str) -> dict[str, Any]:
    return next(view for view in dashboard()["views"] if view["path"] == path)


def referenced(node: Any) -> Iterator[str]:
    """Every entity id a card, row, badge or visibility condition names."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("entity", "entity_id") and isinstance(value, str):
                yield value
            elif key == "entities" and isinstance(value, list):
                for item in value:
                    if isinstance(item, str):
                        yield item
                    else:
                        yield from referenced(item)
            else:
                yield from referenced(value)
    elif isinstance(node, list):
        for item in node:
            yield from referenced(item)


def cards(node: Any, card_type: str) -> Iterator[dict[str, Any]]:
    """Every card of a type, however deeply nested."""
    if isinstance(node, dict):
        if node.get("type") == card_type:
            yield node
        for value in node.values():
            yield from cards(value, card_type)
    elif isinstance(node, list):
        for item in node:
            yield from cards(item, card_type)


async def test_dashboard_loads_and_starts_with_the_waste_view() -> None:
    config = dashboard()
    assert config["title"] == "City Operations"
    views = config["views"]
    assert views[0]["path"] == "waste"
    assert views[0]["title"] == "Waste"
    # No placeholder views for what is not built yet, and nothing left of the placeholder.
    assert [(view["path"], view["title"]) for view in views] == [
        ("waste", "Waste"),
        ("lighting", "Lighting"),
    ]
    assert not list(cards(config, "markdown"))


async def test_every_referenced_entity_exists_in_the_demo_park() -> None:
    known = expected_entity_ids(demo_assets())
    used = set(referenced(dashboard()))
    assert used, "the dashboard names no entities at all"
    assert sorted(used - known) == []


async def test_every_demo_container_is_on_the_map_and_has_a_gauge() -> None:
    config = view("waste")
    fill_levels = {f"sensor.{slugify(f'{a.name} fill_level')}" for a in containers()}
    (map_card,) = cards(config, "map")
    assert {row["entity"] for row in map_card["entities"]} == fill_levels
    gauges = list(cards(config, "gauge"))
    assert sorted(gauge["entity"] for gauge in gauges) == sorted(fill_levels)
    for gauge in gauges:
        # Red where the site calls a container full; hidden while offline (a gauge would
        # show a warning card for a non-numeric state).
        assert gauge["severity"]["red"] == DEFAULT_FULL_THRESHOLD
        assert gauge["visibility"] == [
            {"condition": "numeric_state", "entity": gauge["entity"], "above": -1}
        ]


async def test_attention_lists_cover_every_container() -> None:
    assets = containers()
    filters = {card["card"]["title"]: card for card in cards(view("waste"), "entity-filter")}
    expected = {
        "Fire alarm": "binary_sensor.{}_fire_alarm",
        "Tilted": "binary_sensor.{}_tilt",
        "Sensors not reporting": "sensor.{}_fill_level",
        "Batteries below 20 %": "sensor.{}_battery",
    }
    assert set(filters) == set(expected)
    for title, pattern in expected.items():
        card = filters[title]
        assert card["show_empty"] is False
        assert {row["entity"] for row in card["entities"]} == {
            pattern.format(slugify(asset.name)) for asset in assets
        }, title
    assert filters["Fire alarm"]["state_filter"] == ["on"]  # the string, not YAML's boolean
    assert filters["Batteries below 20 %"]["state_filter"] == [{"operator": "<", "value": 20}]


# phcc's MQTT mock starts paho's one-second misc loop on a socket that never closes; phcc
# tolerates that timer only under tests/components/, so say so here.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_entity_ids_match_what_home_assistant_creates_for_the_demo_park(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient
) -> None:
    """Set the demo park up for real and compare with the registry, not with a guess."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=SITE,
        data={"name": SITE, **TOPIC_DEFAULTS_DATA},
        subentries_data=[
            ConfigSubentryData(
                data=asset.as_subentry_data(),
                subentry_type=asset.kind,
                title=asset.name,
                unique_id=f"{asset.source_kind}:{asset.device}",
            )
            for asset in demo_assets()
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    registered = {
        e.entity_id for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    }
    assert registered == expected_entity_ids(demo_assets())
    assert set(referenced(dashboard())) <= registered
    for entity_id in referenced(dashboard()):
        assert hass.states.get(entity_id) is not None, entity_id
    assert set(demo_motion_sensors()) <= registered
    for name in (asset.name for asset in masts()):
        # What the Lighting view's map needs from a luminaire.
        state = hass.states.get(f"light.{slugify(name)}")
        assert state is not None, name
        assert {"latitude", "longitude", "commanded_level"} <= set(state.attributes), name


async def test_lighting_view_maps_every_demo_mast() -> None:
    lights = {f"light.{slugify(asset.name)}" for asset in masts()}
    assert len(lights) == 12
    (map_card,) = cards(view("lighting"), "map")
    assert {row["entity"] for row in map_card["entities"]} == lights
    for row in map_card["entities"]:
        # The level each mast was told, from the light's attributes.
        assert (row["label_mode"], row["attribute"]) == ("attribute", "commanded_level")


async def test_lighting_view_has_a_tile_per_mast_grouped_by_path() -> None:
    paths: dict[str, list[str]] = {}
    for asset in masts():
        paths.setdefault(asset.params["path"], []).append(f"light.{slugify(asset.name)}")
    assert sorted(paths) == ["Hauptweg", "Seeweg"]
    sections = {
        section["cards"][0]["heading"]: section
        for section in view("lighting")["sections"]
        if section["cards"][0]["type"] == "heading"
    }
    for path, lights in paths.items():
        tiles = [card["entity"] for card in cards(sections[path], "tile")]
        assert tiles == lights, path  # in walking order, as the asset file lists them


async def test_lighting_view_lists_faults_and_motion_of_every_mast() -> None:
    filters = {card["card"]["title"]: card for card in cards(view("lighting"), "entity-filter")}
    assert set(filters) == {"Lamp faults", "Motion now"}
    for title, key in (("Lamp faults", "lamp_fault"), ("Motion now", "motion")):
        card = filters[title]
        assert card["show_empty"] is False
        assert card["state_filter"] == ["on"]  # the string, not YAML's boolean
        assert {row["entity"] for row in card["entities"]} == {
            f"binary_sensor.{slugify(asset.name)}_{key}" for asset in masts()
        }, title


async def test_lighting_view_shows_energy_and_savings_over_time() -> None:
    energy = f"sensor.{slugify(SITE)}_lighting_energy"
    savings = f"sensor.{slugify(SITE)}_lighting_savings"
    (graph,) = cards(view("lighting"), "history-graph")
    assert [row["entity"] for row in graph["entities"]] == [energy, savings]
    assert graph["hours_to_show"] == 24


def demo_motion_sensors() -> list[str]:
    """The motion sensors the demo's motion lighting automation watches."""
    (automation,) = load_yaml(DEMO_AUTOMATIONS)  # type: ignore[misc]
    use = automation["use_blueprint"]
    assert use["path"] == "city_ops/motion_lighting.yaml"
    return list(use["input"]["motion_sensors"])


async def test_demo_automation_watches_every_demo_mast() -> None:
    assert sorted(demo_motion_sensors()) == sorted(
        f"binary_sensor.{slugify(asset.name)}_motion" for asset in masts()
    )
