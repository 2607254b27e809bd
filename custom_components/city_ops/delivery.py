"""Getting a command to a device, over MQTT or ZHA: what does not get through is reported back.

A command is only handed to the MQTT client while it is connected: the client keeps what it
cannot send and delivers it after reconnecting, and an UNLOCK arriving minutes later would open
a door nobody stands at.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

if TYPE_CHECKING:
    from .sources.zha import ZhaDevices

type Failed = Callable[[str, object], None]


def mqtt_connected(hass: HomeAssistant) -> bool:
    """Whether Home Assistant's MQTT client is connected to the broker right now."""
    try:
        return mqtt.is_connected(hass)
    except KeyError:  # MQTT not set up (yet, or any more)
        return False


def zha_reachable(hass: HomeAssistant, zha: ZhaDevices | None) -> bool:
    """Whether ZHA runs with its radio, so a request can reach a device."""
    if zha is None:
        return False
    from .sources.zha import ZhaDevices  # noqa: PLC0415  (zigpy only once ZHA runs)

    return ZhaDevices.available(hass)


def reachable(hass: HomeAssistant, source_kind: str, zha: ZhaDevices | None) -> bool:
    """Whether a command to a device bound over `source_kind` can leave right now."""
    if source_kind == "zha":
        return zha_reachable(hass, zha)
    return mqtt_connected(hass)


async def async_publish(
    hass: HomeAssistant, topic: str, payload: str, qos: int, failed: Failed
) -> bool:
    """Publish a command; a broker that is gone is reported (never raised) and False returned."""
    if not mqtt_connected(hass):
        failed(topic, "not connected to the MQTT broker")
        return False
    try:
        await mqtt.async_publish(hass, topic, payload, qos)
    except HomeAssistantError as err:
        failed(topic, err)
        return False
    return True


async def async_zha(
    zha: ZhaDevices | None,
    ieee: str,
    send: Callable[[ZhaDevices], Awaitable[None]],
    failed: Failed,
) -> bool:
    """Run a ZHA request; ZHA missing or the device not answering is reported, never raised."""
    if zha is None:
        failed(ieee, "ZHA is not loaded")
        return False
    from .sources.zha import ZhaCommandError  # noqa: PLC0415  (zigpy only once ZHA runs)

    try:
        await send(zha)
    except ZhaCommandError as err:
        failed(ieee, err)
        return False
    return True
