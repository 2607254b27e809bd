"""The asset file: parsing, every problem reported at once, export round trip, site conflicts."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from custom_components.city_ops.model.assets import (
    MAX_FEATURES,
    Asset,
    AssetFileError,
    asset_from_subentry,
    check_against_site,
    export_asset_file,
    parse_asset_file,
)


def feature(
    name: str = "Bin 0042", lon: Any = 10.0002, lat: Any = 53.7001, **props: Any
) -> dict[str, Any]:
    properties = {
        "kind": "container",
        "name": name,
        "source": {"kind": "ttn", "device": name.lower().replace(" ", "-")},
        **props,
    }
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": properties,
    }


def collection(*features: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def problems_of(document: Any, existing: list[Asset] | None = None) -> list[str]:
    with pytest.raises(AssetFileError) as info:
        parse_asset_file(document, existing or [])
    assert str(info.value) == "; ".join(info.value.problems[:20])
    return info.value.problems


VALID = collection(
    feature(
        "Bin 0042",
        waste_kind="paper",
        volume_l=240,
        depth_mm=1000,
        sensor_offset_mm=50,
        report_interval_s=900,
        gis_id="NS-4711",
        street={"name": "Rathausallee", "number": "12a"},
        tags=["school", "Ä"],
        note=None,
    ),
    feature(
        "Glass 7", lon=10.01, lat=53.69, source={"kind": "chirpstack", "device": "A84041000181C0DE"}
    ),
    feature("Tuya 1", source={"kind": "zigbee2mqtt", "device": "park/north/tuya level 1"}),
    feature("Native 1", lon=-0.1278, lat=51.5074, source={"kind": "native", "device": "bin-n1"}),
)


# -- a valid file ----------------------------------------------------------------------------


def test_valid_file() -> None:
    assets = parse_asset_file(VALID)
    assert [asset.name for asset in assets] == ["Bin 0042", "Glass 7", "Tuya 1", "Native 1"]
    first = assets[0]
    assert first == Asset(
        kind="container",
        name="Bin 0042",
        latitude=53.7001,
        longitude=10.0002,
        source_kind="ttn",
        device="bin-0042",
        params={
            "waste_kind": "paper",
            "volume_l": 240,
            "depth_mm": 1000,
            "sensor_offset_mm": 50,
            "report_interval_s": 900,
        },
        extra={
            "gis_id": "NS-4711",
            "street": {"name": "Rathausallee", "number": "12a"},
            "tags": ["school", "Ä"],
            "note": None,
        },
    )


def test_defaults_and_normalisation() -> None:
    glass, tuya, native = parse_asset_file(VALID)[1:]
    assert glass.params == {
        "waste_kind": "residual",
        "volume_l": 1100,
        "depth_mm": 1200,
        "sensor_offset_mm": 100,
        "report_interval_s": 3600,
    }
    assert (glass.latitude, glass.longitude) == (53.69, 10.01)  # GeoJSON is [lon, lat]
    assert glass.device == "a84041000181c0de"  # DevEUIs compare lower-case
    assert tuya.device == "park/north/tuya level 1"  # friendly names may hold slashes
    assert (native.latitude, native.longitude) == (51.5074, -0.1278)
    assert glass.extra == {}


def test_names_and_devices_are_trimmed() -> None:
    (asset,) = parse_asset_file(
        collection(feature("  Bin 1 ", source={"kind": "native", "device": " bin-1 "}))
    )
    assert (asset.name, asset.device) == ("Bin 1", "bin-1")


def test_empty_collection() -> None:
    assert parse_asset_file(collection()) == []


def test_parser_does_not_modify_its_input() -> None:
    document = copy.deepcopy(VALID)
    parse_asset_file(document)
    assert document == VALID


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        pytest.param({"volume_l": 240.0}, 240, id="whole-float"),
        pytest.param({"depth_mm": 50}, 50, id="depth-min"),
        pytest.param({"sensor_offset_mm": 0}, 0, id="offset-zero"),
        pytest.param({"report_interval_s": 604_800}, 604_800, id="interval-week"),
    ],
)
def test_parameter_bounds_accepted(props: dict[str, Any], expected: int) -> None:
    (asset,) = parse_asset_file(collection(feature(**props)))
    ((key, _),) = props.items()
    assert asset.params[key] == expected
    assert type(asset.params[key]) is int


# -- every bad feature reported, nothing returned ---------------------------------------------

BIG_INT = 10**400  # valid JSON, too large for a float


def _with(**props: Any) -> dict[str, Any]:
    """A feature named "Bad" whose properties are then overwritten."""
    bad = feature("Bad")
    bad["properties"].update(props)
    return bad


def _with_source(kind: Any, device: Any) -> dict[str, Any]:
    return feature("Bad", source={"kind": kind, "device": device})


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        pytest.param("not a feature", "not a GeoJSON Feature", id="string"),
        pytest.param(None, "not a GeoJSON Feature", id="null"),
        pytest.param(
            {**feature("Bad"), "type": "Polygon"}, "not a GeoJSON Feature", id="wrong-type"
        ),
        pytest.param({**feature("Bad"), "geometry": None}, "Point", id="no-geometry"),
        pytest.param(
            {
                **feature("Bad"),
                "geometry": {"type": "LineString", "coordinates": [[10, 53], [10, 54]]},
            },
            "Point",
            id="linestring",
        ),
        pytest.param(
            {**feature("Bad"), "geometry": {"type": "Point", "coordinates": [10]}},
            "longitude, latitude",
            id="one-coordinate",
        ),
        pytest.param(
            {**feature("Bad"), "geometry": {"type": "Point", "coordinates": "10,53"}},
            "longitude, latitude",
            id="coordinates-string",
        ),
        pytest.param(feature("Bad", lat=95), "out of range", id="latitude-95"),
        pytest.param(feature("Bad", lon=-181), "out of range", id="longitude-181"),
        pytest.param(feature("Bad", lon=53.7, lat=100.0), "out of range", id="swapped"),
        pytest.param(feature("Bad", lat="53.7"), "numbers", id="latitude-string"),
        pytest.param(feature("Bad", lat=True), "numbers", id="latitude-bool"),
        pytest.param(feature("Bad", lon=None), "numbers", id="longitude-null"),
        pytest.param(feature("Bad", lat=float("nan")), "numbers", id="latitude-nan"),
        pytest.param(feature("Bad", lon=float("inf")), "numbers", id="longitude-inf"),
        pytest.param(feature("Bad", lat=BIG_INT), "", id="latitude-huge-int"),
        pytest.param({**feature("Bad"), "properties": None}, "properties", id="no-properties"),
        pytest.param(
            {**feature("Bad"), "properties": ["kind", "container"]},
            "properties",
            id="properties-list",
        ),
        pytest.param(
            feature("Bad", kind="locker_bank"),
            "a locker bank's source.kind must be one of native, zha",
            id="kind-locker-bank-on-lorawan",
        ),
        pytest.param(feature("Bad", kind="locker"), "'locker' is not supported", id="kind-locker"),
        pytest.param(feature("Bad", kind=None), "not supported", id="kind-missing"),
        pytest.param(feature("Bad", kind="Container"), "not supported", id="kind-case"),
        pytest.param(feature("Bad", kind=["container"]), "not supported", id="kind-list"),
        pytest.param(_with(name=""), "name", id="name-empty"),
        pytest.param(_with(name="   "), "name", id="name-blank"),
        pytest.param(_with(name=42), "name", id="name-number"),
        pytest.param(_with(name="x" * 65), "name", id="name-too-long"),
        pytest.param(feature("Bad", source="ttn:bin"), "source", id="source-string"),
        pytest.param(feature("Bad", source=None), "source", id="source-missing"),
        pytest.param(
            _with_source("zha", "00:0d:6f:00:0a:90:69:e7"), "source.kind", id="source-kind-zha"
        ),
        pytest.param(_with_source("TTN", "bin"), "source.kind", id="source-kind-case"),
        pytest.param(_with_source(["ttn"], "bin"), "source.kind", id="source-kind-list"),
        pytest.param(_with_source({"kind": "ttn"}, "bin"), "source.kind", id="source-kind-object"),
        pytest.param(_with_source("ttn", ""), "source.device", id="device-empty"),
        pytest.param(_with_source("ttn", 42), "source.device", id="device-number"),
        pytest.param(_with_source("ttn", "x" * 129), "source.device", id="device-too-long"),
        pytest.param(_with_source("ttn", "bin/1"), "MQTT", id="device-slash"),
        pytest.param(_with_source("native", "bin+"), "MQTT", id="device-plus"),
        pytest.param(_with_source("zigbee2mqtt", "park/#"), "MQTT", id="device-hash"),
        pytest.param(_with_source("chirpstack", "a8\u0000"), "MQTT", id="device-nul"),
        pytest.param(feature("Bad", waste_kind="plastic"), "waste_kind", id="waste-kind-unknown"),
        pytest.param(feature("Bad", waste_kind=None), "waste_kind", id="waste-kind-null"),
        pytest.param(feature("Bad", waste_kind=["paper"]), "waste_kind", id="waste-kind-list"),
        pytest.param(feature("Bad", volume_l=0), "volume_l", id="volume-zero"),
        pytest.param(feature("Bad", volume_l=100_001), "volume_l", id="volume-too-big"),
        pytest.param(feature("Bad", volume_l="240"), "volume_l", id="volume-string"),
        pytest.param(feature("Bad", volume_l=240.5), "volume_l", id="volume-fraction"),
        pytest.param(feature("Bad", volume_l=True), "volume_l", id="volume-bool"),
        pytest.param(feature("Bad", volume_l=BIG_INT), "volume_l", id="volume-huge-int"),
        pytest.param(feature("Bad", depth_mm=49), "depth_mm", id="depth-too-small"),
        pytest.param(feature("Bad", depth_mm=float("nan")), "depth_mm", id="depth-nan"),
        pytest.param(feature("Bad", sensor_offset_mm=-1), "sensor_offset_mm", id="offset-negative"),
        pytest.param(
            feature("Bad", report_interval_s=9), "report_interval_s", id="interval-too-short"
        ),
        pytest.param(
            feature("Bad", report_interval_s=None), "report_interval_s", id="interval-null"
        ),
    ],
)
def test_bad_feature_reported_with_index_and_name(bad: Any, needle: str) -> None:
    document = collection(feature("Good 1"), bad, feature("Good 2"))
    problems = problems_of(document)
    assert len(problems) == 1
    (problem,) = problems
    assert problem.startswith("feature 1")
    props = bad.get("properties") if isinstance(bad, dict) else None
    if isinstance(props, dict):
        assert problem.startswith(f"feature 1 ({str(props['name'])[:64]}): ")
    assert needle in problem


def test_every_bad_feature_reported_nothing_returned() -> None:
    document = collection(
        feature("Good 1"),
        feature("Far away", lat=-91),
        feature("Good 2"),
        feature("Streetlight 1", kind="mast"),
        "junk",
        feature("Paper 3", waste_kind="cardboard"),
        feature("Good 3"),
    )
    problems = problems_of(document)
    assert len(problems) == 4
    assert problems[0].startswith("feature 1 (Far away): ")
    assert problems[1].startswith("feature 3 (Streetlight 1): ")
    assert problems[2].startswith("feature 4: ")
    assert problems[3].startswith("feature 5 (Paper 3): ")


def test_many_problems_all_listed() -> None:
    document = collection(*(feature(f"Bin {i}", lat=100) for i in range(30)))
    problems = problems_of(document)
    assert len(problems) == 30
    assert [p.split(" ")[1] for p in problems] == [str(i) for i in range(30)]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        pytest.param([], "the file is not a GeoJSON FeatureCollection", id="list"),
        pytest.param(None, "the file is not a GeoJSON FeatureCollection", id="null"),
        pytest.param(
            {"type": "Feature"}, "the file is not a GeoJSON FeatureCollection", id="feature"
        ),
        pytest.param({"features": []}, "the file is not a GeoJSON FeatureCollection", id="no-type"),
        pytest.param({"type": "FeatureCollection"}, "features must be a list", id="no-features"),
        pytest.param(
            {"type": "FeatureCollection", "features": {}},
            "features must be a list",
            id="features-object",
        ),
        pytest.param(
            {"type": "FeatureCollection", "features": [None] * (MAX_FEATURES + 1)},
            f"more than {MAX_FEATURES} features",
            id="too-many",
        ),
    ],
)
def test_not_a_collection(document: Any, problem: str) -> None:
    assert problems_of(document) == [problem]


# -- conflicts within the file ---------------------------------------------------------------


def test_duplicate_names() -> None:
    document = collection(
        feature("Bin 1", source={"kind": "ttn", "device": "a"}),
        feature("BIN 1", source={"kind": "ttn", "device": "b"}),
        feature(" bin 1 ", source={"kind": "ttn", "device": "c"}),
        feature("Bin 2", source={"kind": "ttn", "device": "d"}),
    )
    problems = problems_of(document)
    assert problems == ["name 'BIN 1' appears twice", "name 'bin 1' appears twice"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(
            {"kind": "ttn", "device": "bin-1"}, {"kind": "ttn", "device": "bin-1"}, id="same"
        ),
        pytest.param(
            {"kind": "ttn", "device": "bin-1"}, {"kind": "ttn", "device": " bin-1"}, id="padded"
        ),
        pytest.param(
            {"kind": "chirpstack", "device": "A84041000181C0DE"},
            {"kind": "chirpstack", "device": "a84041000181c0de"},
            id="dev-eui-case",
        ),
    ],
)
def test_duplicate_bindings(first: dict[str, str], second: dict[str, str]) -> None:
    document = collection(feature("Bin 1", source=first), feature("Bin 2", source=second))
    (problem,) = problems_of(document)
    assert "'Bin 2' and 'Bin 1' share the device" in problem


def test_same_device_of_different_kinds_is_fine() -> None:
    document = collection(
        feature("Bin 1", source={"kind": "ttn", "device": "bin-1"}),
        feature("Bin 2", source={"kind": "native", "device": "bin-1"}),
    )
    assert len(parse_asset_file(document)) == 2


def test_feature_problems_and_conflicts_together() -> None:
    document = collection(
        feature("Bin 1"),
        feature("Bin 1"),
        feature("Bin 9", lat="north"),
    )
    problems = problems_of(document)
    assert len(problems) == 3
    assert problems[0].startswith("feature 2 (Bin 9)")
    assert "appears twice" in problems[1]
    assert "share the device" in problems[2]


# -- conflicts with the site -----------------------------------------------------------------

SITE = parse_asset_file(
    collection(
        feature("Bin 1", source={"kind": "ttn", "device": "bin-1"}),
        feature("Bin 2", source={"kind": "chirpstack", "device": "a84041000181c0de"}),
    )
)


@pytest.mark.parametrize(
    ("incoming", "problems"),
    [
        pytest.param(
            feature("Bin 3", source={"kind": "ttn", "device": "bin-3"}), [], id="new-device"
        ),
        pytest.param(
            feature("Bin 1", source={"kind": "ttn", "device": "bin-1"}), [], id="same-asset"
        ),
        pytest.param(
            feature("bin 1", source={"kind": "ttn", "device": "bin-1"}),
            [],
            id="same-asset-casefold",
        ),
        pytest.param(
            feature("Bin 3", source={"kind": "ttn", "device": "bin-1"}),
            ["'Bin 3': device 'bin-1' already feeds 'Bin 1'"],
            id="taken",
        ),
        pytest.param(
            feature("Bin 3", source={"kind": "chirpstack", "device": "A84041000181C0DE"}),
            ["'Bin 3': device 'a84041000181c0de' already feeds 'Bin 2'"],
            id="taken-dev-eui-case",
        ),
        pytest.param(
            feature("Bin 3", source={"kind": "native", "device": "bin-1"}), [], id="other-kind"
        ),
    ],
)
def test_check_against_site(incoming: dict[str, Any], problems: list[str]) -> None:
    assets = parse_asset_file(collection(incoming))
    assert check_against_site(assets, SITE) == problems
    if problems:
        assert problems_of(collection(incoming), SITE) == problems
    else:
        assert parse_asset_file(collection(incoming), SITE) == assets


def test_check_against_empty_site() -> None:
    assert check_against_site(parse_asset_file(VALID), []) == []


# -- export ----------------------------------------------------------------------------------


def _by_name(assets: list[Asset]) -> list[Asset]:
    return sorted(assets, key=lambda asset: asset.name.casefold())


def test_export_round_trip() -> None:
    parsed = parse_asset_file(VALID)
    exported = export_asset_file(parsed)
    assert json.loads(json.dumps(exported)) == exported  # plain JSON, nothing exotic
    reparsed = parse_asset_file(exported)
    # The export is sorted by name; apart from order, nothing changes.
    assert _by_name(reparsed) == _by_name(parsed)
    assert export_asset_file(reparsed) == exported


def test_export_of_sorted_file_is_identity_on_assets() -> None:
    parsed = _by_name(parse_asset_file(VALID))
    assert parse_asset_file(export_asset_file(parsed)) == parsed


def test_unknown_properties_exported_unchanged() -> None:
    exported = export_asset_file(parse_asset_file(VALID))
    bin_42 = next(f for f in exported["features"] if f["properties"]["name"] == "Bin 0042")
    assert bin_42 == {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [10.0002, 53.7001]},
        "properties": {
            "gis_id": "NS-4711",
            "street": {"name": "Rathausallee", "number": "12a"},
            "tags": ["school", "Ä"],
            "note": None,
            "kind": "container",
            "name": "Bin 0042",
            "source": {"kind": "ttn", "device": "bin-0042"},
            "waste_kind": "paper",
            "volume_l": 240,
            "depth_mm": 1000,
            "sensor_offset_mm": 50,
            "report_interval_s": 900,
        },
    }


def test_export_order() -> None:
    exported = export_asset_file(parse_asset_file(VALID))
    assert [f["properties"]["name"] for f in exported["features"]] == [
        "Bin 0042",
        "Glass 7",
        "Native 1",
        "Tuya 1",
    ]


def test_subentry_round_trip() -> None:
    for asset in parse_asset_file(VALID):
        assert asset_from_subentry(asset.kind, asset.as_subentry_data()) == asset
