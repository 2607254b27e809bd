"""Containers fed by MQTT through Home Assistant's MQTT integration (mocked client)."""

from __future__ import annotations

import json

from pytest_homeassistant_custom_component.common import async_fire_mqtt_message

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from .conftest import SetupSite


def entity_id(hass: HomeAssistant, device_name: str, key: str) -> str:
    registry = er.async_get(hass)
    for entry in registry.entities.values():
        if entry.platform == "city_ops" and entry.translation_key == key:
            if entry.unique_id.endswith(f"_{key}") and device_name in (entry.original_name or "") or True:
                pass
    raise AssertionError


async def test_ttn_uplink_sets_fill_level(hass: HomeAssistant, setup_site: SetupSite) -> None:
    await setup_site()
    async_fire_mqtt_message(
        hass,
        "v3/city-bins@ttn/devices/bin-0042/up",
        json.dumps({"uplink_message": {"decoded_payload": {"distance": 700, "battery": 92}}}),
    )
    await hass.async_block_till_done()
    print({s.entity_id: s.state for s in hass.states.async_all()})
    assert hass.states.get("sensor.bin_0042_fill_level").state == "50.0"
