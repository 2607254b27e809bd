"""What operators and automations see of the inferred movement, and the texts of lamp faults."""

from __future__ import annotations

from datetime import timedelta
import json
from pathlib import Path

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.model.lighting import FaultKind

from .conftest import SetupSite
from .test_masts import BOOST, advance, clear, commands, report, state

TRANSLATIONS = Path(__file__).parents[2] / "custom_components" / "city_ops" / "translations"


@pytest.fixture(autouse=True)
def night(hass: HomeAssistant) -> None:
    hass.states.async_set("sun.sun", "below_horizon")


async def test_the_motion_sensor_shows_where_someone_is_heading(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
) -> None:
    """M2 then M3 (the chain runs north-east, about 13 m apart): heading from M2, lit ahead."""
    await setup_lighting()
    await report(hass, "mast-2", occupancy=True)
    first = state(hass, "M2", "motion")
    assert first.attributes == {
        **first.attributes,
        "came_from": None,
        "heading": None,
        "speed": None,
    }
    freezer.tick(timedelta(seconds=10))
    clear(mqtt_mock)
    await report(hass, "mast-3", occupancy=True)
    seen = state(hass, "M3", "motion")
    assert seen.state == "on"
    assert seen.attributes["came_from"] == "M2"
    assert 25 <= seen.attributes["heading"] <= 35  # north-east
    assert 1.0 <= seen.attributes["speed"] <= 1.6  # a walking pace
    # The automation's boost for M3 lights ahead (M4, M5, ...), not back towards M2.
    await hass.services.async_call(
        "city_ops",
        "boost",
        {"entity_id": state(hass, "M3", "light").entity_id},
        blocking=True,
        return_response=True,
    )
    await hass.async_block_till_done()
    boosted = sorted(commands(mqtt_mock))
    assert "mast-2" not in boosted
    assert {"mast-3", "mast-4", "mast-5"} <= set(boosted)
    assert all(sent[-1] == BOOST for sent in commands(mqtt_mock).values())
    # A quarter of an hour on, the episode is over: no heading any more.
    await advance(hass, freezer, timedelta(minutes=16))
    assert state(hass, "M3", "motion").attributes["came_from"] is None


@pytest.mark.parametrize("language", ["en", "de"])
def test_every_fault_kind_has_its_own_repair_text_and_name(language: str) -> None:
    texts = json.loads((TRANSLATIONS / f"{language}.json").read_text("utf-8"))
    issues = texts["issues"]
    names = texts["entity"]["binary_sensor"]["lamp_fault"]["state_attributes"]["fault_kind"]
    for kind in FaultKind:
        issue = issues[f"lamp_fault_{kind.value}"]
        assert "{mast}" in issue["title"]
        assert "{since}" in issue["description"]
        assert names["state"][kind.value]
