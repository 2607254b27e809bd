"""The City Operations dashboard (and the demo's automation) names only entities that the demo
park really has."""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
import re
from typing import Any

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.template import Template
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
# A locker bank's own entities, then each compartment's, named "Compartment {number} <key>"
# (the lock is the compartment itself: "Compartment {number}").
LOCKER_BANK_ENTITIES = {"sensor": ("items_available",), "calendar": ("reservations",)}
COMPARTMENT_ENTITIES = {
    "lock": ("",),
    "binary_sensor": ("door", "item"),
    "sensor": ("loan_state",),
}
ENTITY_ID = re.compile(r"\b(?:sensor|binary_sensor|lock|calendar)\.[a-z0-9_]+\b")


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
        if asset.kind == "locker_bank":
            ids.update(bank_entity_ids(asset))
            for number in compartment_numbers(asset):
                ids.update(compartment_entity_ids(asset, number))
            continue
        if asset.kind == "mast":
            ids.add(f"light.{slugify(asset.name)}")
        per_kind = MAST_ENTITIES if asset.kind == "mast" else CONTAINER_ENTITIES
        for domain, keys in per_kind.items():
            ids.update(f"{domain}.{slugify(f'{asset.name} {key}')}" for key in keys)
    return ids


def bank_entity_ids(bank: Asset) -> set[str]:
    return {
        f"{domain}.{slugify(f'{bank.name} {key}')}"
        for domain, keys in LOCKER_BANK_ENTITIES.items()
        for key in keys
    }


def compartment_numbers(bank: Asset) -> list[int]:
    return [compartment["number"] for compartment in bank.params["compartments"]]


def compartment_entity_ids(bank: Asset, number: int) -> set[str]:
    return {
        f"{domain}.{slugify(f'{bank.name} compartment {number} {key}')}"
        for domain, keys in COMPARTMENT_ENTITIES.items()
        for key in keys
    }


def compartment_entity(bank: Asset, number: int, key: str) -> str:
    domain = "binary_sensor" if key in ("door", "item") else "sensor"
    return f"{domain}.{slugify(f'{bank.name} compartment {number} {key}')}"


def locker_banks() -> list[Asset]:
    return [asset for asset in demo_assets() if asset.kind == "locker_bank"]


def masts() -> list[Asset]:
    return [asset for asset in demo_assets() if asset.kind == "mast"]


def containers() -> list[Asset]:
    return [asset for asset in demo_assets() if asset.kind == "container"]


def view(path: str) -> dict[str, Any]:
    return next(view for view in dashboard()["views"] if view["path"] == path)


def referenced(node: Any) -> Iterator[str]:
    """Every entity id a card, row, badge, visibility condition or markdown template names."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("entity", "entity_id") and isinstance(value, str):
                yield value
            elif key == "content" and node.get("type") == "markdown":
                yield from ENTITY_ID.findall(value)
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
    # No placeholder views for what is not built yet, and nothing left of the placeholder: the
    # only markdown cards are the lockers' availability per item type (a dictionary attribute
    # no other built-in card can list).
    assert [(view["path"], view["title"]) for view in views] == [
        ("waste", "Waste"),
        ("lighting", "Lighting"),
        ("lockers", "Lockers"),
    ]
    assert not list(cards(views[:2], "markdown"))
    for card in cards(config, "markdown"):
        assert "by_item_type" in card["content"]


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
    assert set(demo_locker_doors()) <= registered
    for card in cards(view("lockers"), "markdown"):
        # The per-item-type lists render against the real sensors (every type of the bank).
        text = Template(card["content"], hass).async_render(parse_result=False)
        assert "Nothing to lend" in text or ": **" in text, text
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


def demo_blueprint_inputs(blueprint: str) -> dict[str, Any]:
    """The inputs of the demo's one automation from a blueprint."""
    automations = load_yaml(DEMO_AUTOMATIONS)
    assert isinstance(automations, list)
    (use,) = (
        automation["use_blueprint"]
        for automation in automations
        if automation["use_blueprint"]["path"] == blueprint
    )
    return dict(use["input"])


def demo_motion_sensors() -> list[str]:
    """The motion sensors the demo's motion lighting automation watches."""
    return list(demo_blueprint_inputs("city_ops/motion_lighting.yaml")["motion_sensors"])


def demo_locker_doors() -> list[str]:
    """The compartment doors the demo's locker alerts watch."""
    return list(demo_blueprint_inputs("city_ops/locker_alerts.yaml")["doors"])


async def test_demo_automation_watches_every_demo_mast() -> None:
    assert sorted(demo_motion_sensors()) == sorted(
        f"binary_sensor.{slugify(asset.name)}_motion" for asset in masts()
    )


async def test_demo_locker_alerts_watch_every_demo_door_and_notify() -> None:
    inputs = demo_blueprint_inputs("city_ops/locker_alerts.yaml")
    assert sorted(demo_locker_doors()) == sorted(
        compartment_entity(bank, number, "door")
        for bank in locker_banks()
        for number in compartment_numbers(bank)
    )
    assert inputs["keypad_lockout"] is True
    assert [action["action"] for action in inputs["notify"]] == ["persistent_notification.create"]


async def test_lockers_view_names_only_entities_of_demo_banks() -> None:
    banks = locker_banks()
    assert [bank.name for bank in banks] == ["Locker North", "Locker Lake"]
    assert [len(compartment_numbers(bank)) for bank in banks] == [6, 4]
    known = set().union(
        *(bank_entity_ids(bank) for bank in banks),
        *(
            compartment_entity_ids(bank, number)
            for bank in banks
            for number in compartment_numbers(bank)
        ),
    )
    used = set(referenced(view("lockers")))
    assert used, "the Lockers view names no entities at all"
    assert sorted(used - known) == []
    # Nothing about lockers elsewhere, and nothing else in the Lockers view.
    assert not set(referenced([view("waste"), view("lighting")])) & known


async def test_lockers_view_shows_availability_per_bank_and_item_type() -> None:
    banks = locker_banks()
    available = [f"sensor.{slugify(bank.name)}_items_available" for bank in banks]
    tiles = [card["entity"] for card in cards(view("lockers"), "tile")]
    assert [entity for entity in tiles if entity.endswith("_items_available")] == available
    lists = list(cards(view("lockers"), "markdown"))
    assert [ENTITY_ID.findall(card["content"]) for card in lists] == [[a] for a in available]


async def test_lockers_view_shows_every_banks_reservations() -> None:
    (calendar,) = cards(view("lockers"), "calendar")
    assert calendar["entities"] == [
        f"calendar.{slugify(bank.name)}_reservations" for bank in locker_banks()
    ]


async def test_lockers_attention_lists_cover_every_compartment() -> None:
    filters = {card["card"]["title"]: card for card in cards(view("lockers"), "entity-filter")}
    expected = {
        "Overdue loans": ("loan_state", ["overdue"]),
        "Doors open": ("door", ["on"]),  # the string, not YAML's boolean
        "Out of service": ("loan_state", ["out_of_service"]),
    }
    assert set(filters) == set(expected)
    for title, (key, states) in expected.items():
        card = filters[title]
        assert card["show_empty"] is False
        assert card["state_filter"] == states, title
        assert [row["entity"] for row in card["entities"]] == [
            compartment_entity(bank, number, key)
            for bank in locker_banks()
            for number in compartment_numbers(bank)
        ], title


async def test_lockers_view_has_a_loan_state_tile_per_compartment_grouped_by_bank() -> None:
    sections = {
        section["cards"][0]["heading"]: section
        for section in view("lockers")["sections"]
        if section["cards"][0]["type"] == "heading"
    }
    for bank in locker_banks():
        tiles = [card["entity"] for card in cards(sections[bank.name], "tile")]
        assert tiles == [
            compartment_entity(bank, number, "loan_state") for number in compartment_numbers(bank)
        ], bank.name
