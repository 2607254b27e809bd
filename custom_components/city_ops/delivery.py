"""Getting a command to a device, over MQTT or ZHA: what does not get through is reported back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

if TYPE_CHECKING:
    from .sources.zha import ZhaDevices

type Failed = Callable[[str, object], None]


async def async_publish(
    hass: HomeAssistant, topic: str, payload: str, qos: int, failed: Failed
) -> None:
    """Publish a command; a broker that is gone is reported, never raised into a task."""
    try:
        await mqtt.async_publish(hass, topic, payload, qos)
    except HomeAssistantError as err:
        failed(topic, err)


async def async_zha(
    zha: ZhaDevices | None,
    ieee: str,
    send: Callable[[ZhaDevices], Awaitable[None]],
    failed: Failed,
) -> None:
    """Run a ZHA request; ZHA missing or the device not answering is reported, never raised."""
    if zha is None:
        failed(ieee, "ZHA is not loaded")
        return
    from .sources.zha import ZhaCommandError  # noqa: PLC0415  (zigpy only once ZHA runs)

    try:
        await send(zha)
    except ZhaCommandError as err:
        failed(ieee, err)
