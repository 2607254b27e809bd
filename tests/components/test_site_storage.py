"""What a site writes to storage, and when: container readings apart from the rest."""

from __future__ import annotations

from datetime import timedelta
import threading
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
)

from custom_components.city_ops.runtime import (
    READINGS_SAVE_DELAY_S,
    SAVE_DELAY_S,
    SiteStore,
    readings_store_key,
    site_store_key,
)

from .conftest import SetupSite
from .test_containers import TTN_TOPIC, state, ttn


def _bin_42(entry: MockConfigEntry) -> str:
    return next(sid for sid, sub in entry.subentries.items() if sub.title == "Bin 0042")


async def _later(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass, dt_util.utcnow())
    await hass.async_block_till_done()


async def test_a_reading_is_saved_within_minutes_in_the_containers_store(
    hass: HomeAssistant,
    setup_site: SetupSite,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    entry = await setup_site()
    readings = readings_store_key(entry.entry_id)
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=700, battery=92))
    await hass.async_block_till_done()
    await _later(hass, freezer, SAVE_DELAY_S + 1)
    assert readings not in hass_storage, "a plain reading was written within seconds"
    # More readings do not push the save out: it happens within the delay of the first.
    for distance in (690, 680):
        await _later(hass, freezer, 100)
        async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=distance))
        await hass.async_block_till_done()
    await _later(hass, freezer, READINGS_SAVE_DELAY_S - 200)
    stored = hass_storage[readings]["data"]["containers"][_bin_42(entry)]
    assert stored["fill_level"] == 51.7
    assert state(hass, "Bin 0042", "fill_level") == "51.7"
    assert "containers" not in hass_storage.get(site_store_key(entry.entry_id), {}).get("data", {})


async def test_an_emptying_is_saved_within_seconds(
    hass: HomeAssistant,
    setup_site: SetupSite,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    entry = await setup_site()
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=700))
    await hass.async_block_till_done()
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=1250))  # 50 % -> 4.2 %: emptied
    await hass.async_block_till_done()
    await _later(hass, freezer, SAVE_DELAY_S + 1)
    bin_42 = _bin_42(entry)
    stored = hass_storage[readings_store_key(entry.entry_id)]["data"]["containers"][bin_42]
    assert stored["fill_level"] == 4.2
    assert stored["last_emptied"] is not None
    assert bin_42 in hass_storage[site_store_key(entry.entry_id)]["data"]["completed"]


async def test_readings_kept_in_the_site_store_come_back(
    hass: HomeAssistant,
    setup_site: SetupSite,
    site_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """A site saved before containers had a store of their own loses none of their state."""
    key = site_store_key(site_entry.entry_id)
    seen = dt_util.utcnow().isoformat()
    hass_storage[key] = {
        "version": 1,
        "minor_version": 1,
        "key": key,
        "data": {
            "containers": {
                _bin_42(site_entry): {"fill_level": 42.0, "last_seen": seen, "online": True}
            },
        },
    }
    entry = await setup_site()
    assert state(hass, "Bin 0042", "fill_level") == "42.0"
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    # Written where they now belong, and no longer in the site's store.
    readings = hass_storage[readings_store_key(entry.entry_id)]["data"]["containers"]
    assert readings[_bin_42(entry)]["fill_level"] == 42.0
    assert "containers" not in hass_storage[key]["data"]


async def test_a_deleted_site_leaves_no_state_behind(
    hass: HomeAssistant, setup_site: SetupSite, hass_storage: dict[str, Any]
) -> None:
    entry = await setup_site()
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=700))
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    stores = (site_store_key(entry.entry_id), readings_store_key(entry.entry_id))
    assert all(key in hass_storage for key in stores)
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert not [key for key in stores if key in hass_storage]


async def test_a_sooner_save_is_not_postponed_by_a_later_one(
    hass: HomeAssistant, hass_storage: dict[str, Any], freezer: FrozenDateTimeFactory
) -> None:
    snapshots = 0

    def snapshot() -> dict[str, Any]:
        nonlocal snapshots
        snapshots += 1
        return {"n": snapshots}

    store = SiteStore(hass, "city_ops.test", snapshot)
    store.schedule(300)
    store.schedule(5)  # news while a slow save runs: brought forward
    store.schedule(300)  # a plain change after it does not push it back
    await _later(hass, freezer, 6)
    assert hass_storage["city_ops.test"]["data"] == {"n": 1}
    store.schedule(300)
    await _later(hass, freezer, 299)
    assert hass_storage["city_ops.test"]["data"] == {"n": 1}
    await _later(hass, freezer, 2)
    assert hass_storage["city_ops.test"]["data"] == {"n": 2}


async def test_readings_are_serialised_off_the_event_loop(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Thousands of fill histories would stall the loop: the snapshot runs in a worker."""
    threads: list[int] = []

    def snapshot() -> dict[str, Any]:
        threads.append(threading.get_ident())
        return {"containers": {}}

    store = SiteStore(hass, "city_ops.containers.test", snapshot, in_thread=True)
    await store.async_save()
    assert threads
    assert threads[0] != threading.get_ident()
    assert hass_storage["city_ops.containers.test"]["data"] == {"containers": {}}
