"""The City Operations dashboard names only entities that the demo park really has."""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import slugify
from homeassistant.util.yaml import load_yaml_dict
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.const import (
    DEFAULT_FULL_THRESHOLD,
    DOMAIN,
    SUBENTRY_CONTAINER,
    TOPIC_DEFAULTS_DATA,
)
from custom_components.city_ops.model.assets import Asset, parse_asset_file

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "dashboards" / "city_operations.yaml"
DEMO_PARK = ROOT / "config" / "demo_park.geojson"
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
SITE_ENTITIES = {"sensor": ("containers_due",), "todo": ("collection_route",)}


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
        for domain, keys in CONTAINER_ENTITIES.items():
            ids.update(f"{domain}.{slugify(f'{asset.name} {key}')}" for key in keys)
    return ids


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
    assert [view["path"] for view in views] == ["waste"]
    assert not list(cards(config, "markdown"))


async def test_every_referenced_entity_exists_in_the_demo_park() -> None:
    known = expected_entity_ids(demo_assets())
    used = set(referenced(dashboard()))
    assert used, "the dashboard names no entities at all"
    assert sorted(used - known) == []


async def test_every_demo_container_is_on_the_map_and_has_a_gauge() -> None:
    config = dashboard()
    fill_levels = {f"sensor.{slugify(f'{a.name} fill_level')}" for a in demo_assets()}
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
    assets = demo_assets()
    filters = {card["card"]["title"]: card for card in cards(dashboard(), "entity-filter")}
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
                subentry_type=SUBENTRY_CONTAINER,
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
