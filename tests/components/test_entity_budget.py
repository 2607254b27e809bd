"""The site's entity budget: what each asset gets, and what happens at Home Assistant's limit.

The limit (10,000 enabled entities per config entry) is patched down to a few entities so
that the order, the refusals and the repair issue show on a site of a handful of assets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator, MqttMockHAClient

from custom_components.city_ops import sensor
from custom_components.city_ops.budget import (
    CONTAINER_COST,
    ISSUE_ENTITY_LIMIT,
    MAST_COST,
    PATH_COST,
    changes_cost,
)
from custom_components.city_ops.const import DOMAIN, TOPIC_DEFAULTS_DATA

from .conftest import SetupSite, container, locker_bank, mast
from .test_config_flow import NEW_CONTAINER
from .test_containers import TTN_TOPIC, ttn

LIMIT = "homeassistant.helpers.entity_platform.MAX_ENABLED_ENTITIES_PER_CONFIG_ENTRY"
SITE_ENTITIES = 3  # collection route, containers due, container alarms
# A container's entities besides its fill level, all created only once it has their value.
CONTAINER_EXTRAS = (
    "fill_state",
    "last_emptied",
    "predicted_full",
    "battery",
    "temperature",
    "fire_alarm",
    "tilt",
)


@pytest.fixture
def limit() -> Iterator[Any]:
    """Home Assistant's per-entry limit, set by each test (read by HA and by the budget)."""
    with patch(LIMIT, 10_000) as patched:
        yield patched


def set_limit(value: int) -> None:
    import homeassistant.helpers.entity_platform as entity_platform  # noqa: PLC0415

    entity_platform.MAX_ENABLED_ENTITIES_PER_CONFIG_ENTRY = value


def entities(hass: HomeAssistant, entry: MockConfigEntry) -> list[er.RegistryEntry]:
    return er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)


def by_key(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> list[er.RegistryEntry]:
    return [e for e in entities(hass, entry) if e.translation_key == key]


async def translated(hass: HomeAssistant, language: str, category: str, key: str) -> str:
    texts = await async_get_translations(hass, language, category, {DOMAIN})
    return texts[f"component.{DOMAIN}.{category}.{key}"]


# -- what an asset gets ----------------------------------------------------------------------


async def test_a_container_costs_one_enabled_entity_and_gets_the_rest_when_reported(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    enabled = [e for e in entities(hass, entry) if e.disabled_by is None]
    assert len(enabled) == 4 * CONTAINER_COST + SITE_ENTITIES == 7
    assert {e.translation_key for e in enabled} == {
        "fill_level",
        "collection_route",
        "containers_due",
        "container_alarms",
    }
    # Nothing reported yet: neither measured nor derived values have an entity, not even
    # a disabled one (each would cost a registry entry on a site of thousands).
    for key in CONTAINER_EXTRAS:
        assert by_key(hass, entry, key) == []

    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=200, battery=90, temperature=85.0))
    await hass.async_block_till_done()
    # Bin 0042 reported a level (so a fill state, and full: a predicted time), a battery and a
    # temperature (not a tilt, never emptied): those entities now exist, disabled.
    for key in ("fill_state", "predicted_full", "battery", "temperature", "fire_alarm"):
        (reported,) = by_key(hass, entry, key)
        assert reported.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert by_key(hass, entry, "tilt") == []
    assert by_key(hass, entry, "last_emptied") == []

    # What an operator reads rides on the fill level, and the site lists the alarms.
    level = hass.states.get("sensor.bin_0042_fill_level")
    assert level is not None
    assert level.state == "91.7"
    assert level.attributes["fill_state"] == "full"
    assert level.attributes["alarm"] == "fire"
    # Site entities follow within the site's refresh cooldown.
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=2))
    await hass.async_block_till_done()
    alarms = hass.states.get("sensor.stadtpark_container_alarms")
    assert alarms is not None
    assert alarms.state == "1"
    assert alarms.attributes["fire"] == ["Bin 0042"]
    assert alarms.attributes["tilted"] == []


async def test_a_tilted_container_that_is_not_due_shows_in_the_site_alarms(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    await setup_site()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=2))
    await hass.async_block_till_done()
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=1100, position="tilt"))
    await hass.async_block_till_done()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=4))
    await hass.async_block_till_done()
    level = hass.states.get("sensor.bin_0042_fill_level")
    assert level is not None
    assert (level.state, level.attributes["alarm"]) == ("16.7", "tilted")
    alarms = hass.states.get("sensor.stadtpark_container_alarms")
    assert alarms is not None
    assert (alarms.state, alarms.attributes["tilted"]) == ("1", ["Bin 0042"])


async def test_reported_quantities_come_back_after_a_restart(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=700, position="tilt"))
    await hass.async_block_till_done()
    (tilt,) = by_key(hass, entry, "tilt")
    # An operator who wants this container's tilt as an entity enables it.
    er.async_get(hass).async_update_entity(tilt.entity_id, disabled_by=None)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    state = hass.states.get(tilt.entity_id)
    assert state is not None
    assert state.state == "on"


async def test_a_restart_builds_no_entity_that_home_assistant_would_leave_out(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    """Registered disabled entities are not built: on a large site that was most of a set-up."""
    entry = await setup_site()
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=700, battery=92))
    await hass.async_block_till_done()
    (fill_state,) = by_key(hass, entry, "fill_state")
    assert fill_state.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    with patch.object(sensor, "ContainerSensor", wraps=sensor.ContainerSensor) as built:
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
    assert Counter(call.args[2].key for call in built.call_args_list) == {"fill_level": 4}
    # Still registered and disabled, for an operator to enable (which reloads the site).
    assert by_key(hass, entry, "fill_state") == [fill_state]
    assert len(by_key(hass, entry, "battery")) == 1


# -- the limit: order and repair issue -------------------------------------------------------


@pytest.fixture
def mixed_site() -> MockConfigEntry:
    """Three containers, a mast (its PIR not heard yet) and a bank of two compartments."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Stadtpark",
        data={"name": "Stadtpark", **TOPIC_DEFAULTS_DATA},
        options={"full_threshold": 80, "due_horizon_h": 24},
        subentries_data=[
            container("C1", "ttn", "c-1"),
            container("C2", "ttn", "c-2"),
            container("C3", "ttn", "c-3"),
            mast("M1", "mast-1"),
            locker_bank("Bank", "bank-1", ("Walker", "walker"), ("Cart", "hand_cart")),
        ],
    )


async def test_over_the_limit_the_essentials_come_first_and_a_repair_issue_names_the_rest(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    mqtt_mock: MqttMockHAClient,
    mixed_site: MockConfigEntry,
    limit: Any,
) -> None:
    # Essentials: 6 site entities, 3 fill levels, the light, 2 locks = 12. Two more fit: the
    # first operations entities in asset order (the mast's lamp fault, the bank's count).
    set_limit(14)
    mixed_site.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mixed_site.entry_id)
    await hass.async_block_till_done()
    enabled = {e.translation_key for e in entities(hass, mixed_site) if e.disabled_by is None}
    assert len([e for e in entities(hass, mixed_site) if e.disabled_by is None]) == 14
    assert enabled == {
        "collection_route",
        "containers_due",
        "container_alarms",
        "lighting_energy",
        "lighting_reference_energy",
        "lighting_savings",
        "fill_level",
        "light",
        "compartment",
        "lamp_fault",
        "items_available",
    }
    for entity_id in (
        "sensor.c1_fill_level",
        "sensor.c3_fill_level",
        "light.m1",
        "lock.bank_compartment_1",
        "lock.bank_compartment_2",
    ):
        assert hass.states.get(entity_id) is not None, entity_id

    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"{ISSUE_ENTITY_LIMIT}_{mixed_site.entry_id}"
    )
    assert issue is not None
    assert issue.translation_key == ISSUE_ENTITY_LIMIT
    placeholders = issue.translation_placeholders or {}
    assert placeholders["count"] == "9"
    assert placeholders["limit"] == "14"
    # Energy last: the path's figures (the site's own, so before the mast's), then the mast's.
    assert placeholders["missing"].splitlines() == [
        "- reservations: 1 (Bank)",
        "- loan_state: 2 (Bank #1, Bank #2)",
        "- door: 2 (Bank #1, Bank #2)",
        "- path_savings: 1 (Stadtpark · Hauptweg)",
        "- path_energy: 1 (Stadtpark · Hauptweg)",
        "- path_reference_energy: 1 (Stadtpark · Hauptweg)",
        "- energy: 1 (M1)",
    ]
    for language in ("en", "de"):
        text = await translated(hass, language, "issues", f"{ISSUE_ENTITY_LIMIT}.description")
        assert "{missing}" in text
        assert "{limit}" in text

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, mixed_site)
    assert diagnostics["entities"] == {
        "enabled": 14,
        "limit": 14,
        "room": -1,  # the mast's motion sensor waits for its first report and needs one
        "not_created": {
            "door": 2,
            "energy": 1,
            "loan_state": 2,
            "path_energy": 1,
            "path_reference_energy": 1,
            "path_savings": 1,
            "reservations": 1,
        },
    }

    # The PIR speaks: its motion sensor would be enabled, and there is no room: named too.
    async_fire_mqtt_message(hass, "zigbee2mqtt/mast-1", '{"occupancy": true}')
    await hass.async_block_till_done()
    assert by_key(hass, mixed_site, "motion") == []
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"{ISSUE_ENTITY_LIMIT}_{mixed_site.entry_id}"
    )
    assert issue is not None
    assert "- motion: 1 (M1)" in (issue.translation_placeholders or {})["missing"]

    # With room again (entities disabled elsewhere, or a higher limit) a reload adds them all
    # and the issue goes away.
    set_limit(10_000)
    assert await hass.config_entries.async_reload(mixed_site.entry_id)
    await hass.async_block_till_done()
    assert len([e for e in entities(hass, mixed_site) if e.disabled_by is None]) == 24
    assert hass.states.get("binary_sensor.m1_motion") is not None
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, f"{ISSUE_ENTITY_LIMIT}_{mixed_site.entry_id}")
        is None
    )


async def test_entities_an_operator_enabled_stay_within_the_limit(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, mixed_site: MockConfigEntry, limit: Any
) -> None:
    mixed_site.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mixed_site.entry_id)
    await hass.async_block_till_done()
    registry = er.async_get(hass)
    # C1 reports a level: its fill state now exists (disabled), C2's and C3's do not.
    async_fire_mqtt_message(hass, "v3/city-bins@ttn/devices/c-1/up", ttn(distance=700))
    await hass.async_block_till_done()
    # Every disabled entity enabled by hand (C1's fill state, items, power, ...).
    for entity in entities(hass, mixed_site):
        if entity.disabled_by is not None:
            registry.async_update_entity(entity.entity_id, disabled_by=None)
    enabled = len([e for e in entities(hass, mixed_site) if e.disabled_by is None])
    assert enabled == 20 + 1 + 1 + 2 + 3  # + the path's savings, energy and reference
    # Registered entities are Home Assistant's to add whatever the limit; a new one needs room.
    set_limit(enabled)
    assert await hass.config_entries.async_reload(mixed_site.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.c1_fill_state") is not None
    async_fire_mqtt_message(hass, "zigbee2mqtt/mast-1", '{"occupancy": true}')
    await hass.async_block_till_done()
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"{ISSUE_ENTITY_LIMIT}_{mixed_site.entry_id}"
    )
    assert issue is not None
    assert (issue.translation_placeholders or {})["missing"] == "- motion: 1 (M1)"


# -- refusals before the limit ---------------------------------------------------------------


async def test_the_add_flow_is_refused_when_no_asset_of_that_kind_fits(
    hass: HomeAssistant, setup_site: SetupSite, limit: Any
) -> None:
    entry = await setup_site()  # 7 enabled entities
    set_limit(7)
    for kind in ("container", "mast", "locker_bank"):
        result = await hass.config_entries.subentries.async_init(
            (entry.entry_id, kind), context={"source": SOURCE_USER}
        )
        assert result["type"] is FlowResultType.ABORT, kind
        assert result["reason"] == "entity_limit"
        assert result["description_placeholders"] == {"limit": "7"}
        for language in ("en", "de"):
            text = await translated(
                hass, language, "config_subentries", f"{kind}.abort.entity_limit"
            )
            assert "{limit}" in text

    set_limit(8)  # room for one more container
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "container"), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_CONTAINER)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert hass.states.get("sensor.bin_0099_fill_level") is not None


async def test_a_bank_with_more_compartments_than_fit_is_refused_with_how_many_fit(
    hass: HomeAssistant, setup_site: SetupSite, limit: Any
) -> None:
    entry = await setup_site()
    set_limit(7 + 6)  # room for a bank (2) and one compartment (3), not two
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "locker_bank"), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    bank = {
        "name": "Locker Nord",
        "latitude": 53.7,
        "longitude": 10.0,
        "compartments": [
            {"number": 1, "item": "Walker", "item_type": "walker"},
            {"number": 2, "item": "Walker", "item_type": "walker"},
        ],
        "pickup_window_min": 120,
        "loan_period_min": 240,
        "source_kind": "native",
        "device": "locker-nord",
    }
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], bank)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "entity_limit"}
    assert result["description_placeholders"] == {"fit": "1", "limit": "13", "cost": "3"}
    german = await translated(hass, "de", "config_subentries", "locker_bank.error.entity_limit")
    assert german.format(**result["description_placeholders"]).startswith(
        "Dieser Standort hat nur noch Platz für 1 weitere Fächer"
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**bank, "compartments": bank["compartments"][:1]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_an_import_past_the_limit_is_refused_and_adds_nothing(
    hass: HomeAssistant, setup_site: SetupSite, limit: Any, tmp_path: Path
) -> None:
    entry = await setup_site()
    hass.config.config_dir = str(tmp_path)
    set_limit(7 + 5)
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [10.0, 53.7 + n / 1000]},
            "properties": {
                "kind": "container",
                "name": f"Paper {n}",
                "source": {"kind": "ttn", "device": f"paper-{n}"},
            },
        }
        for n in range(6)
    ]
    (tmp_path / "bins.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN,
            "import_assets",
            {"config_entry_id": entry.entry_id, "path": "bins.geojson"},
            blocking=True,
            return_response=True,
        )
    assert refused.value.translation_key == "entity_limit_import"
    placeholders = refused.value.translation_placeholders or {}
    assert placeholders["needed"] == "6"
    assert placeholders["room"] == "5"
    assert placeholders["containers"] == "5"
    assert str(refused.value).startswith(
        "The file would add 6 enabled entities, but this site has room for 5 more"
    )
    assert len(entry.subentries) == 4
    german = await translated(hass, "de", "exceptions", "entity_limit_import.message")
    assert german.format(**placeholders).startswith(
        "Die Datei würde 6 aktivierte Entitäten hinzufügen"
    )


def new_mast(path: str) -> dict[str, Any]:
    """The mast form's answer for a mast on a path."""
    return {
        "name": "M2",
        "latitude": 53.7002,
        "longitude": 10.0002,
        "path": path,
        "rated_power_w": 40,
        "neighbours": ["M1"],
        "source_kind": "zigbee2mqtt",
        "device": "mast-2",
    }


async def test_the_first_mast_of_a_path_brings_its_figures_and_is_refused_without_room(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, mixed_site: MockConfigEntry, limit: Any
) -> None:
    mixed_site.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mixed_site.entry_id)
    await hass.async_block_till_done()
    paths = {e.translation_key: e for e in entities(hass, mixed_site) if "path" in e.unique_id}
    assert sorted(paths) == ["path_energy", "path_reference_energy", "path_savings"]
    savings = hass.states.get(paths["path_savings"].entity_id)
    assert savings is not None
    assert savings.attributes["path"] == "Hauptweg"
    assert savings.name == "Stadtpark Savings Hauptweg"

    # Room for a mast on its path, not for one that starts a path of its own.
    room = mixed_site.runtime_data.budget.room()
    set_limit(10_000 - room + MAST_COST + PATH_COST - 1)
    result = await hass.config_entries.subentries.async_init(
        (mixed_site.entry_id, "mast"), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], new_mast("Seeweg")
    )
    assert result["errors"] == {"base": "entity_limit"}
    assert result["description_placeholders"] == {
        "fit": "0",
        "limit": str(10_000 - room + MAST_COST + PATH_COST - 1),
        "cost": str(MAST_COST + PATH_COST),
    }
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], new_mast("Hauptweg")
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_a_path_no_mast_is_on_any_more_takes_its_figures_along(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, mixed_site: MockConfigEntry
) -> None:
    mixed_site.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mixed_site.entry_id)
    await hass.async_block_till_done()
    (mast_id,) = mixed_site.runtime_data.site.masts
    subentry = mixed_site.subentries[mast_id]
    hass.config_entries.async_update_subentry(
        mixed_site, subentry, data={**subentry.data, "path": "Seeweg"}
    )
    await hass.async_block_till_done()
    paths = sorted(
        (e.translation_key, hass.states.get(e.entity_id).attributes["path"])  # type: ignore[union-attr]
        for e in entities(hass, mixed_site)
        if "path" in e.unique_id
    )
    assert paths == [
        ("path_energy", "Seeweg"),
        ("path_reference_energy", "Seeweg"),
        ("path_savings", "Seeweg"),
    ]


async def test_changes_count_each_path_their_masts_start_once(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, mixed_site: MockConfigEntry
) -> None:
    mixed_site.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mixed_site.entry_id)
    await hass.async_block_till_done()
    runtime = mixed_site.runtime_data
    masts = [("mast", "Seeweg"), ("mast", "Seeweg"), ("mast", "Hauptweg"), ("container", "")]
    assert (
        changes_cost(runtime, [(kind, 0, None) for kind, _ in masts], [path for _, path in masts])
        == 3 * MAST_COST + PATH_COST + CONTAINER_COST
    )


def path_figures(hass: HomeAssistant, entry: MockConfigEntry) -> list[tuple[str, str]]:
    """(translation key, path) of every path entity of the site that has a state."""
    found = []
    for entity in entities(hass, entry):
        state = hass.states.get(entity.entity_id)
        if entity.translation_key.startswith("path_") and state is not None:  # type: ignore[union-attr]
            found.append((str(entity.translation_key), str(state.attributes["path"])))
    return sorted(found)


async def test_a_mast_added_in_place_on_a_new_path_brings_its_figures_and_takes_them_along(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, mixed_site: MockConfigEntry
) -> None:
    mixed_site.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mixed_site.entry_id)
    await hass.async_block_till_done()
    keys = ["path_energy", "path_reference_energy", "path_savings"]
    assert path_figures(hass, mixed_site) == [(key, "Hauptweg") for key in keys]
    result = await hass.config_entries.subentries.async_init(
        (mixed_site.entry_id, "mast"), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], new_mast("Seeweg")
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert path_figures(hass, mixed_site) == sorted(
        [(key, "Hauptweg") for key in keys] + [(key, "Seeweg") for key in keys]
    )
    added = next(sid for sid, sub in mixed_site.subentries.items() if sub.data.get("name") == "M2")
    assert hass.config_entries.async_remove_subentry(mixed_site, added)
    await hass.async_block_till_done()
    assert path_figures(hass, mixed_site) == [(key, "Hauptweg") for key in keys]
