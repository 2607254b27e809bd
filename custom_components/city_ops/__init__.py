"""City Operations: park lighting, waste containers and lending lockers for a city."""

from __future__ import annotations

from homeassistant.components import mqtt
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.typing import ConfigType

from .booking import async_register_booking, async_remove_desk
from .console import async_register_console
from .const import DOMAIN
from .runtime import (
    CityOpsConfigEntry,
    CityOpsRuntime,
    async_remove_stores,
    async_write_device_registry,
    config_signature,
)
from .services import async_setup_services

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.CALENDAR,
    Platform.LIGHT,
    Platform.LOCK,
    Platform.SENSOR,
    Platform.TODO,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services, the operations console and the booking pages once for all sites."""
    async_setup_services(hass)
    await async_register_console(hass)
    async_register_booking(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: CityOpsConfigEntry) -> bool:
    """Set up a site: wait for MQTT, restore state, subscribe, create entities.

    The site reports loaded only once the broker acknowledged its subscriptions (bounded),
    so that nothing a device sends after "loaded" is lost.
    """
    if not await mqtt.async_wait_for_mqtt_client(hass):
        raise ConfigEntryNotReady(translation_domain=DOMAIN, translation_key="mqtt_not_ready")
    devices_before = _device_ids(hass, entry)
    runtime = CityOpsRuntime(hass, entry)
    await runtime.async_start()  # returns once the broker has the subscriptions (bounded)
    entry.runtime_data = runtime
    # The site's device first: every asset's device hangs off it (via_device).
    runtime.site_device_id = (
        dr.async_get(hass)
        .async_get_or_create(
            config_entry_id=entry.entry_id,
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.title,
            manufacturer="City Operations",
            model="Site",
            entry_type=dr.DeviceEntryType.SERVICE,
        )
        .id
    )
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))
    _remove_dropped_compartments(hass, entry)
    runtime.budget.plan()
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    if _device_ids(hass, entry) - devices_before:
        await async_write_device_registry(hass)
    if runtime.signature != config_signature(entry) and not runtime.bulk_update:
        # An asset added while the site was starting (after the runtime read the entry, before
        # the listener was there) reached neither the old site's listener nor this one.
        runtime.bulk_update = True
        hass.config_entries.async_schedule_reload(entry.entry_id)
    return True


def _device_ids(hass: HomeAssistant, entry: CityOpsConfigEntry) -> set[str]:
    return {
        device.id
        for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    }


def _remove_dropped_compartments(hass: HomeAssistant, entry: CityOpsConfigEntry) -> None:
    """Entities of compartments a bank no longer has would stay unavailable forever."""
    registry = er.async_get(hass)
    banks = entry.runtime_data.site.locker_banks
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        bank = banks.get(entity.config_subentry_id or "")
        if bank is None:
            continue
        number = entity.unique_id.removeprefix(f"{entity.config_subentry_id}_").split("_", 1)[0]
        if number.isdigit() and int(number) not in bank.compartments:
            registry.async_remove(entity.entity_id)


async def async_unload_entry(hass: HomeAssistant, entry: CityOpsConfigEntry) -> bool:
    """Unload a site and flush its state to storage."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.async_stop()
    return unloaded


async def _async_update_listener(hass: HomeAssistant, entry: CityOpsConfigEntry) -> None:
    """Follow a changed container in place; rebuild the site for anything else."""
    runtime = entry.runtime_data
    if runtime.bulk_update or runtime.signature == config_signature(entry):
        return
    if await runtime.async_apply_changes():
        return
    runtime.bulk_update = True
    hass.config_entries.async_schedule_reload(entry.entry_id)


async def async_remove_entry(hass: HomeAssistant, entry: CityOpsConfigEntry) -> None:
    """A deleted site takes its stored state, its booking page's secret and links along."""
    await async_remove_stores(hass, entry.entry_id)
    await async_remove_desk(hass, entry.entry_id)
