"""The mast subentry flow (add, reconfigure) and the lighting profile in the site's options."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time
import json
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import (
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.config_flow import _validate_mast
from custom_components.city_ops.model.lighting import LightingProfile, MastSpec

from .conftest import SetupSite, sent_to, start_add, start_reconfigure, subentry

# What these tests check is shown by entities that are disabled by default, too.
pytestmark = pytest.mark.usefixtures("every_entity_enabled")

NEW_MAST = {
    "name": "M8",
    "latitude": 53.7008,
    "longitude": 10.0008,
    "path": " Nordweg ",
    "rated_power_w": 60,
    "neighbours": ["M6"],
    "source_kind": "zigbee2mqtt",
    "device": "mast-8",
}


@pytest.fixture(autouse=True)
def evening(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> Iterator[None]:
    """Dark at 20:00 local, before the night window: a rebuilt site lights its base level."""
    zone = dt_util.get_default_time_zone()
    freezer.move_to(dt_util.as_utc(datetime(2026, 11, 22, 20, 0, tzinfo=zone)))
    with patch("custom_components.city_ops.street_lighting.is_up", return_value=False):
        yield


def schema_field(result: dict[str, Any], name: str) -> tuple[vol.Marker, Any]:
    """The marker and selector of one field of a shown form."""
    return next(
        (marker, value) for marker, value in result["data_schema"].schema.items() if marker == name
    )


def default(result: dict[str, Any], name: str) -> Any:
    """What the form shows in a field: its default or its suggested value."""
    marker, _ = schema_field(result, name)
    if marker.default is not vol.UNDEFINED:
        return marker.default()
    return (marker.description or {}).get("suggested_value")


def mast_entity(hass: HomeAssistant, device: str, key: str) -> str:
    """Find a mast's entity the way dashboards do: device + translation key."""
    device_entry = next(d for d in dr.async_get(hass).devices if d.name == device)
    return next(
        e.entity_id
        for e in er.async_entries_for_device(er.async_get(hass), device_entry.id)
        if e.translation_key == key
    )


# -- add -------------------------------------------------------------------------------------


async def test_add_a_mast_with_its_own_sensors_and_levels(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lighting: SetupSite
) -> None:
    entry = await setup_lighting()
    result = await start_add(hass, entry, "mast")
    _, neighbours = schema_field(result, "neighbours")
    assert neighbours.config["options"] == ["M1", "M2", "M3", "M4", "M5", "M6", "M7"]
    assert default(result, "source_kind") == "zigbee2mqtt"
    assert default(result, "latitude") == hass.config.latitude
    assert default(result, "motion_device") is None
    user_input = {
        **NEW_MAST,
        "motion_device": " pir-8 ",
        "lux_device": "lux-8",
        "base_level": 20,
        "boost_level": 90,
        "hold_s": 60,
    }
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "M8"
    await hass.async_block_till_done()
    added = subentry(entry, "M8")
    assert added.unique_id == "zigbee2mqtt:mast-8"
    assert dict(added.data) == {
        "name": "M8",
        "latitude": 53.7008,
        "longitude": 10.0008,
        "source_kind": "zigbee2mqtt",
        "device": "mast-8",
        "path": "Nordweg",
        "rated_power_w": 60,
        "neighbours": ["M6"],
        "motion_source": {"kind": "zigbee2mqtt", "device": "pir-8"},
        "lux_source": {"kind": "zigbee2mqtt", "device": "lux-8"},
        "base_level": 20.0,
        "boost_level": 90.0,
        "hold_s": 60,
        "extra": {},
    }
    # The reload built the mast: its own levels, a symmetric neighbour, its sensors bound.
    site = entry.runtime_data.site
    mast = site.masts[added.subentry_id]
    assert mast.spec == MastSpec(
        name="M8",
        latitude=53.7008,
        longitude=10.0008,
        path="Nordweg",
        rated_power_w=60.0,
        neighbours=("M6",),
        profile=LightingProfile(base_level=20.0, boost_level=90.0, hold_s=60),
    )
    assert site.lighting.graph.neighbours("M6") == {"M5", "M8"}
    assert sent_to(mqtt_mock, "mast-8")[-1] == {"state": "ON", "brightness": 51, "transition": 1.0}
    assert hass.states.get(mast_entity(hass, "M8", "light")) is not None
    async_fire_mqtt_message(hass, "zigbee2mqtt/pir-8", json.dumps({"occupancy": True}))
    async_fire_mqtt_message(hass, "zigbee2mqtt/lux-8", json.dumps({"illuminance": 7}))
    await hass.async_block_till_done()
    assert hass.states.get(mast_entity(hass, "M8", "motion")).state == "on"
    assert hass.states.get(mast_entity(hass, "M8", "illuminance")).state == "7.0"


async def test_add_a_mast_with_the_fewest_fields(
    hass: HomeAssistant, setup_lighting: SetupSite
) -> None:
    entry = await setup_lighting()
    result = await start_add(hass, entry, "mast")
    minimal = {k: v for k, v in NEW_MAST.items() if k not in ("path", "neighbours")}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], minimal)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    data = subentry(entry, "M8").data
    assert data["path"] == ""
    assert data["neighbours"] == []
    assert data["motion_source"] is None
    assert data["lux_source"] is None
    assert (data["base_level"], data["boost_level"], data["hold_s"]) == (None, None, None)


async def test_add_the_first_mast_of_a_site(hass: HomeAssistant, setup_site: SetupSite) -> None:
    """A site with containers only: no neighbours to offer, and a container's name is taken."""
    entry = await setup_site()
    result = await start_add(hass, entry, "mast")
    _, neighbours = schema_field(result, "neighbours")
    assert neighbours.config["options"] == []
    first = {**NEW_MAST, "name": "Bin 0042", "neighbours": []}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], first)
    assert result["errors"] == {"name": "name_taken"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**first, "name": "M1"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert len(entry.runtime_data.site.masts) == 1
    assert hass.states.get("sensor.stadtpark_lighting_energy") is not None


@pytest.mark.parametrize(
    ("change", "errors", "fixed"),
    [
        pytest.param({"name": "m1"}, {"name": "name_taken"}, {}, id="name-taken-any-case"),
        pytest.param({"name": "  "}, {"name": "name_required"}, {}, id="name-blank"),
        pytest.param({"name": "M" * 65}, {"name": "name_required"}, {}, id="name-too-long"),
        pytest.param({"device": "mast-1"}, {"device": "device_taken"}, {}, id="device-taken"),
        pytest.param({"device": "mast+8"}, {"device": "invalid_device"}, {}, id="device-wildcard"),
        pytest.param({"device": "   "}, {"device": "invalid_device"}, {}, id="device-blank"),
        pytest.param({"rated_power_w": 40.5}, {"base": "invalid_mast"}, {}, id="power-fraction"),
        pytest.param({"path": "P" * 65}, {"base": "invalid_mast"}, {}, id="path-too-long"),
        pytest.param({"hold_s": 7.5}, {"base": "invalid_mast"}, {"hold_s": 60}, id="hold-fraction"),
        pytest.param(
            {"motion_device": "pir#8"},
            {"base": "invalid_mast"},
            {"motion_device": "pir-8"},
            id="motion-device-wildcard",
        ),
        pytest.param(
            {"name": "M1", "device": "mast-2"},
            {"name": "name_taken", "device": "device_taken"},
            {},
            id="both-taken",
        ),
    ],
)
async def test_add_errors_keep_what_was_typed(
    hass: HomeAssistant,
    setup_lighting: SetupSite,
    change: dict[str, Any],
    errors: dict[str, str],
    fixed: dict[str, Any],
) -> None:
    entry = await setup_lighting()
    result = await start_add(hass, entry, "mast")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**NEW_MAST, **change}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    # The form shows what was typed so the operator fixes only the wrong field.
    assert default(result, "path") == change.get("path", NEW_MAST["path"])
    assert default(result, "neighbours") == ["M6"]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**NEW_MAST, **fixed}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_add_a_wrong_optional_value_can_be_cleared(
    hass: HomeAssistant, setup_lighting: SetupSite
) -> None:
    """Typed a bad hold time, then cleared the field: the mast takes the site's hold."""
    entry = await setup_lighting()
    result = await start_add(hass, entry, "mast")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**NEW_MAST, "hold_s": 7.5}
    )
    assert result["errors"] == {"base": "invalid_mast"}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_MAST)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert subentry(entry, "M8").data["hold_s"] is None


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        pytest.param({"device": "pir-7"}, {"device": "device_taken"}, id="luminaire-is-a-pir"),
        pytest.param(
            {"motion_device": "mast-1"}, {"motion_device": "device_taken"}, id="pir-is-a-luminaire"
        ),
        pytest.param({"lux_device": "pir-7"}, {"lux_device": "device_taken"}, id="sensor-shared"),
    ],
)
async def test_a_device_feeds_only_one_mast(
    hass: HomeAssistant,
    setup_lighting: SetupSite,
    change: dict[str, Any],
    errors: dict[str, str],
) -> None:
    """Separate sensors are bindings too: the site routes each device to one asset only."""
    entry = await setup_lighting()
    result = await start_add(hass, entry, "mast")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**NEW_MAST, **change}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"neighbours": ["Ghost"]}, id="unknown-neighbour"),
        pytest.param({"source_kind": "ttn"}, id="container-source"),
        pytest.param({"rated_power_w": 0}, id="no-power"),
        pytest.param({"base_level": 101}, id="over-100"),
        pytest.param({"latitude": 91}, id="latitude"),
    ],
)
async def test_the_form_refuses_out_of_range_values(
    hass: HomeAssistant, setup_lighting: SetupSite, change: dict[str, Any]
) -> None:
    entry = await setup_lighting()
    result = await start_add(hass, entry, "mast")
    with pytest.raises(InvalidData):
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {**NEW_MAST, **change}
        )


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        pytest.param({"latitude": 91}, {"latitude": "invalid_location"}, id="latitude"),
        pytest.param({"longitude": float("nan")}, {"latitude": "invalid_location"}, id="nan"),
        pytest.param({"latitude": "53.7"}, {"latitude": "invalid_location"}, id="text"),
        pytest.param({"base_level": 101}, {"base": "invalid_mast"}, id="level"),
        pytest.param({"neighbours": "M6"}, {"base": "invalid_mast"}, id="neighbours-not-a-list"),
        pytest.param({"source_kind": "bluetooth"}, {"device": "invalid_device"}, id="kind"),
    ],
)
async def test_validation_beyond_the_schema(
    hass: HomeAssistant,
    setup_lighting: SetupSite,
    change: dict[str, Any],
    errors: dict[str, str],
) -> None:
    """The selectors bound the values; the shared validator still refuses bad ones."""
    entry = await setup_lighting()
    data, found = _validate_mast(entry, {**NEW_MAST, **change}, None)
    assert found == errors
    assert data["extra"] == {}


# -- reconfigure -----------------------------------------------------------------------------


async def test_reconfigure_shows_the_stored_values(
    hass: HomeAssistant, setup_lighting: SetupSite
) -> None:
    entry = await setup_lighting()
    result = await start_reconfigure(hass, entry, "mast", "M7")
    assert default(result, "name") == "M7"
    assert default(result, "path") == "Pavillon"
    assert default(result, "motion_device") == "pir-7"
    assert default(result, "lux_device") is None
    assert default(result, "base_level") is None
    _, neighbours = schema_field(result, "neighbours")
    assert neighbours.config["options"] == ["M1", "M2", "M3", "M4", "M5", "M6"]  # not itself
    result = await start_reconfigure(hass, entry, "mast", "M2")
    assert default(result, "neighbours") == ["M1"]
    assert default(result, "motion_device") is None


async def test_reconfigure_changes_the_mast_and_keeps_extra(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lighting: SetupSite
) -> None:
    entry = await setup_lighting()
    m7 = subentry(entry, "M7")
    hass.config_entries.async_update_subentry(
        entry, m7, data={**m7.data, "extra": {"gis_id": "L-7", "owner": "Stadtwerke"}}
    )
    await hass.async_block_till_done()
    result = await start_reconfigure(hass, entry, "mast", "M7")
    changed = {
        "name": "M7",
        "latitude": 53.71,
        "longitude": 10.01,
        "path": "Pavillon",
        "rated_power_w": 25,
        "neighbours": ["M6"],
        "source_kind": "zigbee2mqtt",
        "device": "mast-7",  # its own device is not taken
        "motion_device": "pir-7",
        "lux_device": "lux-7",
        "base_level": 50,
    }
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], changed)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    m7 = entry.subentries[m7.subentry_id]
    assert m7.data["extra"] == {"gis_id": "L-7", "owner": "Stadtwerke"}
    assert m7.data["motion_source"] == {"kind": "zigbee2mqtt", "device": "pir-7"}
    assert m7.data["lux_source"] == {"kind": "zigbee2mqtt", "device": "lux-7"}
    assert m7.data["rated_power_w"] == 25
    mast = entry.runtime_data.site.masts[m7.subentry_id]
    assert mast.spec.rated_power_w == 25
    assert mast.spec.profile.base_level == 50
    assert entry.runtime_data.site.lighting.graph.neighbours("M6") == {"M5", "M7"}
    assert sent_to(mqtt_mock, "mast-7")[-1] == {"state": "ON", "brightness": 127, "transition": 1.0}


async def test_reconfigure_renames_and_moves_to_another_device(
    hass: HomeAssistant, setup_lighting: SetupSite
) -> None:
    entry = await setup_lighting()
    result = await start_reconfigure(hass, entry, "mast", "M2")
    values = {
        "name": "M2",
        "latitude": 53.7002,
        "longitude": 10.0002,
        "path": "Hauptweg",
        "rated_power_w": 40,
        "neighbours": ["M1"],
        "source_kind": "zigbee2mqtt",
    }
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**values, "name": "M3", "device": "mast-3"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"name": "name_taken", "device": "device_taken"}
    assert default(result, "device") == "mast-3"  # what was typed, not what is stored
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**values, "name": "M2 Nord", "device": "mast-2b"}
    )
    assert result["type"] is FlowResultType.ABORT
    await hass.async_block_till_done()
    renamed = subentry(entry, "M2 Nord")
    assert renamed.unique_id == "zigbee2mqtt:mast-2b"
    assert renamed.data["extra"] == {}
    assert entry.runtime_data.site.asset_for("zigbee2mqtt", "mast-2b") == renamed.subentry_id
    assert entry.runtime_data.site.asset_for("zigbee2mqtt", "mast-2") is None


async def test_renaming_a_mast_keeps_its_neighbours(
    hass: HomeAssistant, setup_lighting: SetupSite
) -> None:
    """M3 names M2 as its neighbour; after M2 is renamed the path must stay connected."""
    entry = await setup_lighting()
    result = await start_reconfigure(hass, entry, "mast", "M2")
    values = {**dict(subentry(entry, "M2").data), "name": "M2 Nord"}
    form = {key: values[key] for key in ("name", "latitude", "longitude", "path")}
    form |= {key: values[key] for key in ("rated_power_w", "neighbours", "source_kind", "device")}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.ABORT
    await hass.async_block_till_done()
    graph = entry.runtime_data.site.lighting.graph
    assert graph.neighbours("M2 Nord") == {"M1", "M3"}
    assert graph.corridor("M3", 1) == {"M3": 0, "M2 Nord": 1, "M4": 1}


async def test_reconfigure_can_remove_a_separate_sensor_and_an_override(
    hass: HomeAssistant, setup_lighting: SetupSite
) -> None:
    """A cleared optional field arrives as a missing key; it must not come back as before."""
    entry = await setup_lighting()
    m7 = subentry(entry, "M7")
    hass.config_entries.async_update_subentry(entry, m7, data={**m7.data, "base_level": 50.0})
    await hass.async_block_till_done()
    result = await start_reconfigure(hass, entry, "mast", "M7")
    cleared = {
        "name": "M7",
        "latitude": 53.7007,
        "longitude": 10.0007,
        "path": "Pavillon",
        "rated_power_w": 40,
        "neighbours": [],
        "source_kind": "zigbee2mqtt",
        "device": "mast-7",
    }
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], cleared)
    assert result["type"] is FlowResultType.ABORT
    m7 = entry.subentries[m7.subentry_id]
    assert m7.data["motion_source"] is None
    assert m7.data["base_level"] is None


# -- site options: the lighting profile ------------------------------------------------------

PROFILE_OPTIONS = {
    "base_level": 50,
    "boost_level": 90,
    "hold_s": 30,
    "corridor_hops": 2,
    "transition_up_s": 0.5,
    "transition_down_s": 10,
    "night_start": "22:00:00",
    "night_end": "06:15:00",
    "night_level": 5,
    "warm_kelvin": 2700,
    "lux_threshold": 15,
}


async def test_options_change_the_lighting_profile(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lighting: SetupSite
) -> None:
    entry = await setup_lighting()
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert default(result, "base_level") == 30.0
    assert default(result, "night_start") == "23:30:00"
    assert default(result, "warm_kelvin") == 0
    depot = {"latitude": 53.69, "longitude": 10.01, "radius": 0}
    mqtt_mock.async_publish.reset_mock()
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {"full_threshold": 80, "due_horizon_h": 24, "depot": depot, **PROFILE_OPTIONS},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    expected = LightingProfile(
        base_level=50.0,
        boost_level=90.0,
        hold_s=30,
        corridor_hops=2,
        transition_up_s=0.5,
        transition_down_s=10.0,
        night_start=time(22, 0),
        night_end=time(6, 15),
        night_level=5.0,
        warm_kelvin=2700,
        lux_threshold=15.0,
    )
    runtime = entry.runtime_data
    assert {mast.spec.profile for mast in runtime.site.masts.values()} == {expected}
    # The rebuilt site lights every mast at the new base level with the new transition.
    for number in range(1, 8):
        assert sent_to(mqtt_mock, f"mast-{number}")[-1] == {
            "state": "ON",
            "brightness": 127,
            "transition": 0.5,
        }
    # ... and boosts with the new corridor and level.
    response = await hass.services.async_call(
        "city_ops",
        "boost",
        {"entity_id": mast_entity(hass, "M3", "light")},
        blocking=True,
        return_response=True,
    )
    assert response == {"boosted": ["M1", "M2", "M3", "M4", "M5"]}
    assert sent_to(mqtt_mock, "mast-5")[-1] == {"state": "ON", "brightness": 229, "transition": 0.5}
    # Options shown again are the ones stored.
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert default(result, "night_end") == "06:15:00"
    assert default(result, "hold_s") == 30
