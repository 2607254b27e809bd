"""What the masts write to storage, and when: lasting changes soon, counters every few minutes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.json import json_bytes
from homeassistant.helpers.storage import Store
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.runtime import (
    MASTS_SAVE_DELAY_S,
    SAVE_DELAY_S,
    masts_store_key,
    site_store_key,
)

from .conftest import SetupSite
from .test_masts import advance, local, report


@pytest.fixture(autouse=True)
def dark() -> Iterator[None]:
    with patch("custom_components.city_ops.street_lighting.is_up", return_value=False):
        yield


@pytest.fixture
def writes() -> Iterator[Counter[str]]:
    """Bytes written per store key (and, under `key#`, how many times)."""
    written: Counter[str] = Counter()
    mocked: Any = Store._async_write_data  # phcc's mock, which writes into hass_storage
    writing = mocked.side_effect

    async def counting(store: Store[Any], data: dict[str, Any]) -> None:
        await writing(store, data)  # turns a delayed save's data_func into its data
        written[store.key] += len(json_bytes(data))
        written[f"{store.key}#"] += 1

    mocked.side_effect = counting
    yield written
    mocked.side_effect = writing


def _asset(entry: MockConfigEntry, title: str) -> str:
    return next(sid for sid, sub in entry.subentries.items() if sub.title == title)


def _stored_mast(hass_storage: dict[str, Any], entry: MockConfigEntry, title: str) -> Any:
    return hass_storage[masts_store_key(entry.entry_id)]["data"]["masts"][_asset(entry, title)]


async def test_an_hour_of_minute_ticks_and_reports_writes_the_masts_every_few_minutes(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
    writes: Counter[str],
) -> None:
    """Every mast reports its power each minute and every minute ticks: 60 minutes."""
    freezer.move_to(local(20))
    entry = await setup_lighting()
    writes.clear()
    for _ in range(60):
        for number in range(1, 8):
            await report(hass, f"mast-{number}", state="ON", brightness=76, power=12.0)
        await advance(hass, freezer, timedelta(minutes=1))
    masts, site = masts_store_key(entry.entry_id), site_store_key(entry.entry_id)
    print(  # the figure the README quotes
        f"\nstore writes in one hour: masts {writes[masts + '#']} ({writes[masts]} bytes), "
        f"site {writes[site + '#']} ({writes[site]} bytes)"
    )
    assert writes[f"{masts}#"] <= 60 * 60 // MASTS_SAVE_DELAY_S + 1
    assert writes[f"{masts}#"] >= 60 * 60 // MASTS_SAVE_DELAY_S - 1  # the counters do get out
    assert writes[f"{site}#"] == 0  # nothing of the lighting rewrites bookings or the route


async def test_energy_on_disk_lags_by_at_most_the_save_delay(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """A crash (no unload, only what is on disk) loses at most MASTS_SAVE_DELAY_S of energy."""
    freezer.move_to(local(20))
    entry = await setup_lighting()
    mast = entry.runtime_data.site.masts[_asset(entry, "M1")]
    live: list[float] = []
    for _ in range(23):
        await advance(hass, freezer, timedelta(minutes=1))
        live.append(mast.status.energy_kwh)
    on_disk = _stored_mast(hass_storage, entry, "M1")["energy_kwh"]
    assert on_disk < live[-1]  # not written every minute
    assert on_disk >= live[-1 - MASTS_SAVE_DELAY_S // 60]


async def test_a_fault_and_a_level_set_by_hand_are_saved_within_seconds(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    freezer.move_to(local(20))
    entry = await setup_lighting()
    await advance(hass, freezer, timedelta(seconds=SAVE_DELAY_S + 1))
    # M2's lamp draws nothing at 30 %: a lamp failure once it held for the grace period.
    for _ in range(4):
        await report(hass, "mast-2", state="ON", brightness=76, power=0.0)
        await advance(hass, freezer, timedelta(minutes=1))
    await advance(hass, freezer, timedelta(seconds=SAVE_DELAY_S + 1))
    assert "lamp_failure" in _stored_mast(hass_storage, entry, "M2")["faults"]

    await hass.services.async_call(
        "light",
        "turn_off",
        {"entity_id": "light.m5"},
        blocking=True,
    )
    await advance(hass, freezer, timedelta(seconds=SAVE_DELAY_S + 1))
    stored = _stored_mast(hass_storage, entry, "M5")
    assert stored["override_level"] == 0.0
    assert stored["override_until"] is not None


async def test_masts_kept_in_the_site_store_come_back_and_move_out(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_lighting: SetupSite,
    lighting_site: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """A site saved before masts had a store of their own loses none of their energy."""
    key = site_store_key(lighting_site.entry_id)
    hass_storage[key] = {
        "version": 1,
        "minor_version": 1,
        "key": key,
        "data": {"masts": {_asset(lighting_site, "M1"): {"energy_kwh": 12.5}}},
    }
    entry = await setup_lighting()
    assert entry.runtime_data.site.masts[_asset(entry, "M1")].status.energy_kwh == 12.5
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert _stored_mast(hass_storage, entry, "M1")["energy_kwh"] == 12.5
    assert "masts" not in hass_storage[key]["data"]
    # And back from its own store after a restart.
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.runtime_data.site.masts[_asset(entry, "M1")].status.energy_kwh == 12.5
