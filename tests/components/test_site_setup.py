"""A site's set-up does not lose an asset added while it starts."""

from __future__ import annotations

from types import MappingProxyType
from unittest.mock import patch

from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.runtime import CityOpsRuntime

from .conftest import mast


async def test_an_asset_added_while_the_site_starts_gets_its_device(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, lighting_site: MockConfigEntry
) -> None:
    """The runtime read the entry, the listener is not there yet: a reload picks it up.

    Adding assets one after the other (the UI, a script) let a bank fall into that gap.
    """
    start = CityOpsRuntime.async_start
    added: list[str] = []

    async def start_then_add(runtime: CityOpsRuntime) -> None:
        await start(runtime)
        if not added:
            new = mast("M9", "mast-9")
            subentry = ConfigSubentry(
                data=MappingProxyType(new["data"]),
                subentry_type=new["subentry_type"],
                title=new["title"],
                unique_id=new["unique_id"],
            )
            added.append(subentry.subentry_id)
            hass.config_entries.async_add_subentry(lighting_site, subentry)

    lighting_site.add_to_hass(hass)
    with patch.object(CityOpsRuntime, "async_start", start_then_add):
        # The reload it schedules may still be setting the site up when this returns.
        await hass.config_entries.async_setup(lighting_site.entry_id)
        await hass.async_block_till_done()
    assert lighting_site.state is ConfigEntryState.LOADED
    names = {device.name for device in dr.async_get(hass).devices}
    assert "M9" in names
    assert added[0] in lighting_site.runtime_data.assets
