"""Config flow of a site, its reconfigure and options flows, and the container subentry flow."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.config_flow import ContainerSubentryFlow
from custom_components.city_ops.const import DOMAIN, TOPIC_DEFAULTS_DATA

from .conftest import BIN_42, SetupSite

NEW_CONTAINER = {
    "name": "Bin 0099",
    "latitude": 53.7,
    "longitude": 10.0,
    "waste_kind": "paper",
    "volume_l": 240,
    "depth_mm": 900,
    "sensor_offset_mm": 80,
    "report_interval_s": 1800,
    "source_kind": "ttn",
    "device": "bin-0099",
}


async def test_user_flow_needs_only_a_name(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "  Stadtpark Norderstedt "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Stadtpark Norderstedt"
    assert result["data"] == {"name": "Stadtpark Norderstedt", **TOPIC_DEFAULTS_DATA}
    assert result["options"] == {"full_threshold": 80, "due_horizon_h": 24}
    assert TOPIC_DEFAULTS_DATA == {
        "zigbee2mqtt_base": "zigbee2mqtt",
        "ttn_topic": "v3/+/devices/+/up",
        "chirpstack_topic": "application/+/device/+/event/up",
        "native_base": "city_ops",
    }


async def test_user_flow_rejects_blank_name_and_duplicates(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient
) -> None:
    MockConfigEntry(domain=DOMAIN, title="Park", data={"name": "Park"}).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"name": "   "})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"name": "name_required"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"name": "Park"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_user_flow_aborts_without_mqtt(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "mqtt_not_configured"


async def test_reconfigure_changes_name_and_topics(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    bad = {
        "name": "",
        "zigbee2mqtt_base": "z2m/#",
        "ttn_topic": "v3/#/devices",
        "chirpstack_topic": "",
        "native_base": "city_ops/",
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], bad)
    assert result["errors"] == {
        "name": "name_required",
        "zigbee2mqtt_base": "invalid_base_topic",
        "ttn_topic": "invalid_uplink_topic",
        "chirpstack_topic": "invalid_uplink_topic",
        "native_base": "invalid_base_topic",
    }
    good = {**TOPIC_DEFAULTS_DATA, "name": "Stadtpark Nord", "zigbee2mqtt_base": "z2m"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], good)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.title == "Stadtpark Nord"
    assert entry.data["zigbee2mqtt_base"] == "z2m"


async def test_options_flow(hass: HomeAssistant, setup_site: SetupSite) -> None:
    entry = await setup_site()
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    depot = {"latitude": 53.69, "longitude": 10.01, "radius": 0}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"full_threshold": 90, "due_horizon_h": 12, "depot": depot}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert {key: entry.options[key] for key in ("full_threshold", "due_horizon_h", "depot")} == {
        "full_threshold": 90,
        "due_horizon_h": 12,
        "depot": depot,
    }
    # The lighting profile is part of the same form, with its defaults.
    assert entry.options["base_level"] == 30
    assert entry.options["night_start"] == "23:30:00"
    settings = entry.runtime_data.site.settings
    assert settings.full_threshold == 90
    assert settings.depot_latitude == 53.69


async def _start_container_flow(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "container"), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return dict(result)


async def test_container_subentry_flow_creates_a_device(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    result = await _start_container_flow(hass, entry)
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_CONTAINER)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    subentry = next(s for s in entry.subentries.values() if s.title == "Bin 0099")
    assert subentry.unique_id == "ttn:bin-0099"
    assert subentry.data["depth_mm"] == 900
    assert subentry.data["extra"] == {}
    # The reload built the container: its entities exist and belong to the subentry.
    assert hass.states.get("sensor.bin_0099_fill_level") is not None
    assert subentry.subentry_id in entry.runtime_data.site.containers


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"name": "bin 0042"}, {"name": "name_taken"}),
        ({"name": " "}, {"name": "name_required"}),
        ({"device": "bin-0042"}, {"device": "device_taken"}),
        ({"device": "bin/+"}, {"device": "invalid_device"}),
        ({"depth_mm": 100.5}, {"base": "invalid_geometry"}),
    ],
)
async def test_container_subentry_flow_errors(
    hass: HomeAssistant, setup_site: SetupSite, change: dict[str, Any], errors: dict[str, str]
) -> None:
    entry = await setup_site()
    result = await _start_container_flow(hass, entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**NEW_CONTAINER, **change}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    # The form keeps what was typed so the operator fixes only the wrong field.
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_CONTAINER)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_container_reconfigure_keeps_extra_properties(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    subentry = next(s for s in entry.subentries.values() if s.title == "Bin 0042")
    hass.config_entries.async_update_subentry(
        entry, subentry, data={**subentry.data, "extra": {"gis_id": "A-17"}}
    )
    await hass.async_block_till_done()
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "container"),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
    )
    assert result["step_id"] == "reconfigure"
    # Same name and device as itself is fine; only others count as taken.
    changed = {**{k: v for k, v in BIN_42.items() if k != "extra"}, "depth_mm": 1500}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], changed)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    subentry = entry.subentries[subentry.subentry_id]
    assert subentry.data["depth_mm"] == 1500
    assert subentry.data["extra"] == {"gis_id": "A-17"}
    assert entry.runtime_data.site.containers[subentry.subentry_id].spec.depth_mm == 1500


async def test_container_reconfigure_refuses_a_taken_device(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    subentry = next(s for s in entry.subentries.values() if s.title == "Bin 0042")
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "container"),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
    )
    changed = {
        **{k: v for k, v in BIN_42.items() if k != "extra"},
        "source_kind": "native",
        "device": "bin-n1",
    }
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], changed)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"device": "device_taken"}


async def test_container_validation_beyond_the_schema(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    """The selectors bound the numbers; the shared validator still refuses bad positions."""
    entry = await setup_site()
    result = await _start_container_flow(hass, entry)
    with pytest.raises(InvalidData):
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {**NEW_CONTAINER, "latitude": 91}
        )
    _, errors = ContainerSubentryFlow._validate(entry, {**NEW_CONTAINER, "latitude": 91}, None)
    assert errors == {"latitude": "invalid_location"}
