"""Home Assistant's real MQTT integration on a paho client stub (no broker), as phcc sets it up.

Shared by the benches: both sides of a comparison get their messages through the same client.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components import mqtt
from homeassistant.components.http.config import async_get_and_load_store
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockMqttReasonCode,
    get_test_instance_port,
)


async def async_setup_stubbed_mqtt(hass: HomeAssistant) -> Any:
    """Set up MQTT and connect its client; return the client (`MQTT` in mqtt/client.py)."""
    # MQTT depends on http, which binds at setup: keep off 8123 (a real hass may use it).
    assert await async_setup_component(
        hass,
        "http",
        {"http": {"server_host": ["127.0.0.1"], "server_port": get_test_instance_port()}},
    )
    # HA 2026.10 takes a YAML http block as a trial and restarts 5 minutes later unless it is
    # confirmed; a bench that runs longer would see that restart (and a task error) mid-run.
    store = await async_get_and_load_store(hass)
    if store.pending is not None:
        await store.async_promote_pending()
    entry = MockConfigEntry(
        domain=mqtt.DOMAIN,
        data={mqtt.CONF_BROKER: "mock-broker", mqtt.CONF_PROTOCOL: "5"},
        options={mqtt.CONF_BIRTH_MESSAGE: {}},
        title="MQTT",
        version=1,
        minor_version=2,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    client = hass.data[mqtt.DATA_MQTT].client
    paho = client._mqttc
    paho.on_connect(paho, None, 0, MockMqttReasonCode())
    await hass.async_block_till_done()
    assert client.connected
    return client
