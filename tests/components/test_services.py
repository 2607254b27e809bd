"""Import and export of the asset file, and service errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.city_ops.const import DOMAIN

from .conftest import SetupSite


def feature(name: str, device: str, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [10.0084, 53.7007]},
        "properties": {
            "kind": "container",
            "name": name,
            "source": {"kind": "ttn", "device": device},
            "waste_kind": "paper",
            "volume_l": 1100,
            "depth_mm": 1200,
            "sensor_offset_mm": 100,
            "report_interval_s": 900,
            **props,
        },
    }


def write(hass: HomeAssistant, name: str, features: list[dict[str, Any]]) -> None:
    Path(hass.config.path(name)).write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )


@pytest.fixture(autouse=True)
def private_config_dir(hass: HomeAssistant, tmp_path: Path) -> None:
    """Files of these tests go to a temporary config dir, not phcc's shared testing_config."""
    hass.config.config_dir = str(tmp_path)


async def call(hass: HomeAssistant, service: str, **data: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )


async def test_import_adds_updates_and_keeps_unknown_properties(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    write(
        hass,
        "park.geojson",
        [
            feature("Paper 1", "paper-1", gis_id="GIS-1"),
            feature("Paper 2", "paper-2"),
            feature("Bin 0042", "bin-0042", depth_mm=1500),
        ],
    )
    result = await call(hass, "import_assets", config_entry_id=entry.entry_id, path="park.geojson")
    await hass.async_block_till_done()
    assert result == {"added": ["Paper 1", "Paper 2"], "updated": ["Bin 0042"], "unchanged": []}
    assert hass.states.get("sensor.paper_1_fill_level") is not None
    runtime = entry.runtime_data
    assert len(runtime.site.containers) == 6
    specs = {c.spec.name: c.spec for c in runtime.site.containers.values()}
    assert specs["Bin 0042"].depth_mm == 1500

    again = await call(hass, "import_assets", config_entry_id=entry.entry_id, path="park.geojson")
    assert again == {"added": [], "updated": [], "unchanged": ["Paper 1", "Paper 2", "Bin 0042"]}

    exported = await call(hass, "export_assets", config_entry_id=entry.entry_id, path="out.geojson")
    assert exported["count"] == 6
    document = json.loads(Path(hass.config.path("out.geojson")).read_text(encoding="utf-8"))
    paper_1 = next(f for f in document["features"] if f["properties"]["name"] == "Paper 1")
    assert paper_1["properties"]["gis_id"] == "GIS-1"
    assert paper_1["geometry"]["coordinates"] == [10.0084, 53.7007]
    assert paper_1["properties"]["source"] == {"kind": "ttn", "device": "paper-1"}


async def test_invalid_file_imports_nothing_and_names_each_problem(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    bad_point = feature("Bad point", "bad-point")
    bad_point["geometry"]["coordinates"] = [200, 95]
    write(
        hass,
        "bad.geojson",
        [
            feature("Good", "good"),
            bad_point,
            feature("Wrong depth", "wrong-depth", depth_mm="deep"),
            feature("Thief", "bin-n1"),  # native device of another asset, different kind: ok
            feature("Stolen", "bin-0042"),  # device of Bin 0042 under another name: refused
        ],
    )
    with pytest.raises(ServiceValidationError) as raised:
        await call(hass, "import_assets", config_entry_id=entry.entry_id, path="bad.geojson")
    message = str(raised.value.translation_placeholders["problems"])
    assert raised.value.translation_key == "invalid_asset_file"
    assert "feature 1 (Bad point)" in message
    assert "feature 2 (Wrong depth)" in message
    assert "'Stolen': device 'bin-0042' already feeds 'Bin 0042'" in message
    assert raised.value.translation_placeholders["count"] == "3"
    await hass.async_block_till_done()
    assert len(entry.subentries) == 4
    assert hass.states.get("sensor.good_fill_level") is None


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("../secrets.geojson", "path_outside_config"),
        ("/etc/passwd", "path_outside_config"),
        (".", "path_outside_config"),
        ("missing.geojson", "file_not_found"),
        ("broken.geojson", "file_unreadable"),
    ],
)
async def test_import_refuses_bad_paths(
    hass: HomeAssistant, setup_site: SetupSite, path: str, key: str
) -> None:
    entry = await setup_site()
    Path(hass.config.path("broken.geojson")).write_text("{not json", encoding="utf-8")
    with pytest.raises(ServiceValidationError) as raised:
        await call(hass, "import_assets", config_entry_id=entry.entry_id, path=path)
    assert raised.value.translation_key == key


async def test_export_refuses_paths_outside_config(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    with pytest.raises(ServiceValidationError) as raised:
        await call(hass, "export_assets", config_entry_id=entry.entry_id, path="../x.geojson")
    assert raised.value.translation_key == "path_outside_config"


async def test_export_reports_unwritable_file(hass: HomeAssistant, setup_site: SetupSite) -> None:
    entry = await setup_site()
    Path(hass.config.path("a_file")).write_text("")
    with pytest.raises(HomeAssistantError) as raised:  # a folder that is a file
        await call(hass, "export_assets", config_entry_id=entry.entry_id, path="a_file/x.geojson")
    assert getattr(raised.value, "translation_key", None) == "file_unwritable"


async def test_services_refuse_unknown_and_unloaded_sites(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    await setup_site()
    with pytest.raises(ServiceValidationError) as raised:
        await call(hass, "plan_collection", config_entry_id="nope")
    assert raised.value.translation_key == "unknown_site"
    other = MockConfigEntry(domain=DOMAIN, title="Other", data={"name": "Other"})
    other.add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as raised:
        await call(hass, "plan_collection", config_entry_id=other.entry_id)
    assert raised.value.translation_key == "site_not_loaded"


async def test_import_creates_masts_as_masts(hass: HomeAssistant, setup_site: SetupSite) -> None:
    entry = await setup_site()
    mast_a = feature("Mast A", "mast-a", kind="mast", path="Hauptweg", rated_power_w=40)
    mast_a["properties"]["source"] = {"kind": "zigbee2mqtt", "device": "mast-a"}
    mast_b = feature("Mast B", "mast-b", kind="mast", neighbours=["Mast A"])
    mast_b["properties"]["source"] = {"kind": "zigbee2mqtt", "device": "mast-b"}
    for mast in (mast_a, mast_b):
        for key in ("waste_kind", "volume_l", "depth_mm", "sensor_offset_mm", "report_interval_s"):
            mast["properties"].pop(key)
    clash = feature("Bin 0042", "another-bin")
    clash["properties"]["kind"] = "mast"
    clash["properties"]["source"] = {"kind": "zigbee2mqtt", "device": "mast-c"}
    write(hass, "masts.geojson", [mast_a, mast_b])
    result = await call(hass, "import_assets", config_entry_id=entry.entry_id, path="masts.geojson")
    await hass.async_block_till_done()
    assert result["added"] == ["Mast A", "Mast B"]
    kinds = {sub.title: sub.subentry_type for sub in entry.subentries.values()}
    assert kinds["Mast A"] == kinds["Mast B"] == "mast"
    assert hass.states.get("light.mast_a") is not None
    assert hass.states.get("sensor.mast_a_fill_level") is None
    assert entry.runtime_data.site.lighting.graph.neighbours("Mast A") == {"Mast B"}
    # A name is unique across kinds within a site.
    write(hass, "clash.geojson", [clash])
    with pytest.raises(ServiceValidationError) as raised:
        await call(hass, "import_assets", config_entry_id=entry.entry_id, path="clash.geojson")
    assert "already has a container of that name" in str(
        raised.value.translation_placeholders["problems"]
    )
