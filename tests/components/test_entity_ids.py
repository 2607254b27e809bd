"""Entity ids on a German installation: made from the German names, as Home Assistant makes them.

Our entities hand Home Assistant their translated name in plain letters (`plain_object_id`) so
that its slugify takes its fast path; the ids must be the ones it made from the German names.
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import slugify
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.const import DOMAIN, TOPIC_DEFAULTS_DATA

from .conftest import container, locker_bank


async def german_site(hass: HomeAssistant, *subentries: ConfigSubentryData) -> MockConfigEntry:
    """A site with these assets on a Home Assistant that speaks German (not set up yet)."""
    await hass.config.async_update(language="de")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Stadtpark",
        data={"name": "Stadtpark", **TOPIC_DEFAULTS_DATA},
        subentries_data=list(subentries),
    )
    entry.add_to_hass(hass)
    return entry


async def test_ids_are_made_from_the_german_names_and_stay_over_a_reload(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient
) -> None:
    entry = await german_site(
        hass,
        container("Behälter Süd 1", "ttn", "bin-0042"),
        container("Bin 0043", "ttn", "bin-0043"),
        locker_bank("Fächer Nord", "locker-north", ("Walker", "walker")),
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    registry = er.async_get(hass)
    ids = {
        (e.translation_key, e.entity_id)
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    }
    # Home Assistant's own slugify of "<device> <German name>": umlauts and ß as it writes them,
    # in the asset's name (left to Home Assistant) as in ours.
    for expected in (
        ("fill_level", f"sensor.{slugify('Behälter Süd 1 Füllstand')}"),
        ("fill_level", "sensor.bin_0043_fullstand"),
        ("items_available", f"sensor.{slugify('Fächer Nord Verfügbare Gegenstände')}"),
        ("door", "binary_sensor.facher_nord_fach_1_tur"),
        ("containers_due", "sensor.stadtpark_fallige_behalter"),
    ):
        assert expected in ids
    assert ("fill_level", "sensor.behalter_sud_1_fullstand") in ids
    # What Home Assistant was given to slugify: our part of it in plain letters.
    level = registry.async_get("sensor.bin_0043_fullstand")
    assert level is not None
    assert level.object_id_base == "Fullstand"
    assert level.original_name == "Füllstand"  # the name shown stays German

    # A reload finds every entity as it was registered: no entry is updated.
    updated: list[dict[str, Any]] = []

    def record(event: Event[er.EventEntityRegistryUpdatedData]) -> None:
        if event.data["action"] == "update":
            updated.append(dict(event.data))

    hass.bus.async_listen(er.EVENT_ENTITY_REGISTRY_UPDATED, record)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert updated == []
    regenerated = {
        e.entity_id: registry.async_regenerate_entity_id(e)
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    }
    assert all(old == new for old, new in regenerated.items())


async def test_an_entity_registered_with_the_german_form_keeps_its_id(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient
) -> None:
    entry = await german_site(hass, container("Bin 0042", "ttn", "bin-0042"))
    (subentry_id,) = entry.subentries
    registry = er.async_get(hass)
    # As the versions before registered it: Home Assistant was given the German name.
    registry.async_get_or_create(
        "sensor",
        DOMAIN,
        f"{subentry_id}_fill_level",
        config_entry=entry,
        config_subentry_id=subentry_id,
        object_id_base="Bin 0042 Füllstand",
        original_name="Füllstand",
        has_entity_name=True,
        translation_key="fill_level",
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    level = registry.async_get("sensor.bin_0042_fullstand")
    assert level is not None
    assert level.unique_id == f"{subentry_id}_fill_level"
    assert level.object_id_base == "Fullstand"
    assert hass.states.get("sensor.bin_0042_fullstand") is not None
