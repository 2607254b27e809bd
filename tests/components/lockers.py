"""Helpers the locker tests share: finding a bank, playing its controller, reading commands."""

from __future__ import annotations

import json
from typing import Any

from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.const import DOMAIN

UNLOCK = '{"lock":"UNLOCK"}'
LOCK = '{"lock":"LOCK"}'


def bank_device(hass: HomeAssistant, entry_id: str, name: str) -> str:
    """The device id of a bank by its name."""
    for device in dr.async_get(hass).devices:
        if device.name == name and device.config_entry_id == entry_id:
            return device.id
    raise AssertionError(name)


def report(hass: HomeAssistant, bank: str, number: int, **fields: Any) -> None:
    """The bank reports door ("open"/"closed"), locked and item_present of a compartment."""
    async_fire_mqtt_message(hass, f"city_ops/{bank}/compartment/{number}/state", json.dumps(fields))


def commands(mqtt_mock: MqttMockHAClient) -> list[tuple[str, str]]:
    """Lock commands sent, as (topic, payload)."""
    return [
        (sent.args[0], sent.args[1])
        for sent in mqtt_mock.async_publish.call_args_list
        if sent.args[0].endswith("/set")
    ]


def unlocks(mqtt_mock: MqttMockHAClient) -> list[str]:
    """Topics that got UNLOCK."""
    return [topic for topic, payload in commands(mqtt_mock) if payload == UNLOCK]


def loan_state(hass: HomeAssistant, bank: str, number: int) -> str:
    """The loan state a compartment shows."""
    state = hass.states.get(f"sensor.{bank.replace('-', '_')}_compartment_{number}_loan_state")
    assert state is not None
    return state.state


def wrong(*codes: str) -> str:
    """A six-digit code that is none of `codes`."""
    candidate = 0
    while f"{candidate:06d}" in codes:
        candidate += 1
    return f"{candidate:06d}"


async def call(
    hass: HomeAssistant, service: str, context: Context | None = None, **data: Any
) -> Any:
    """Call a city_ops service, blocking, and return its answer."""
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True, context=context
    )
