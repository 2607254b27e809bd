"""Diagnostics: settings, counters and container states, secrets redacted."""

from __future__ import annotations

import json

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from .conftest import SetupSite


@pytest.mark.freeze_time("2026-11-22 08:00:00+00:00")
async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    setup_site: SetupSite,
    snapshot: SnapshotAssertion,
    freezer: FrozenDateTimeFactory,
) -> None:
    entry = await setup_site()
    topic = "v3/city-bins@ttn/devices/bin-0042/up"
    async_fire_mqtt_message(
        hass, topic, json.dumps({"uplink_message": {"decoded_payload": {"distance": 700}}})
    )
    async_fire_mqtt_message(hass, topic, b"\xff\xfe not json")
    async_fire_mqtt_message(hass, topic, json.dumps({"uplink_message": {}}))
    async_fire_mqtt_message(
        hass, topic, json.dumps({"uplink_message": {"decoded_payload": {"battery": "x"}}})
    )
    await hass.async_block_till_done()
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["messages"]["rejected"] == {
        "not_json": 1,
        "no_decoded_payload": 1,
        "no_measurement": 1,
    }
    assert diagnostics["messages"]["rejected_total"] == 3
    assert diagnostics["containers"]["Bin 0042"]["status"]["fill_level"] == 50.0
    assert diagnostics == snapshot
