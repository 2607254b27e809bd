"""Locker banks in the asset file: compartment lists, parameters, source kinds, export."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from custom_components.city_ops.model.assets import (
    Asset,
    AssetFileError,
    asset_from_subentry,
    export_asset_file,
    locker_bank_params,
    parse_asset_file,
)
from custom_components.city_ops.model.locker import MAX_COMPARTMENTS, compartments_param

WALKER = {"number": 1, "item": "Walker", "item_type": "walker"}
CART = {"number": 2, "item": "Hand cart", "item_type": "hand_cart"}


def bank(name: str = "Locker Nord", **props: Any) -> dict[str, Any]:
    properties = {
        "kind": "locker_bank",
        "name": name,
        "source": {"kind": "native", "device": name.lower().replace(" ", "-")},
        "compartments": [WALKER, CART],
        **props,
    }
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [10.0012, 53.7021]},
        "properties": properties,
    }


def collection(*features: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def problems_of(document: Any) -> list[str]:
    with pytest.raises(AssetFileError) as info:
        parse_asset_file(document)
    return info.value.problems


def numbered(count: int) -> list[dict[str, Any]]:
    return [
        {"number": n, "item": f"Walker {n}", "item_type": "walker"} for n in range(1, count + 1)
    ]


# -- compartments_param ------------------------------------------------------------------------


def test_compartments_sorted_and_normalised() -> None:
    value = [
        {"number": 7, "item": "  Rollator  ", "item_type": " Walker "},
        {"number": 2, "item": "Bollerwagen", "item_type": "Hand_Cart", "colour": "red"},
    ]
    assert compartments_param(value) == [
        {"number": 2, "item": "Bollerwagen", "item_type": "hand_cart"},
        {"number": 7, "item": "Rollator", "item_type": "walker"},
    ]
    assert value[0]["item"] == "  Rollator  "  # the input is left alone


@pytest.mark.parametrize(
    "value",
    [
        pytest.param([WALKER], id="one"),
        pytest.param(numbered(MAX_COMPARTMENTS), id="sixty-four"),
        pytest.param([{**WALKER, "number": 64}], id="number-64"),
        pytest.param([{**WALKER, "item": "x" * 64}], id="item-64-chars"),
        pytest.param([{**WALKER, "item": "Rollator (groß)"}], id="item-any-text"),
        pytest.param([{**WALKER, "item_type": "a" * 32}], id="item-type-32-chars"),
        pytest.param([{**WALKER, "item_type": "walker_2"}], id="item-type-digits"),
    ],
)
def test_compartments_accepted(value: list[dict[str, Any]]) -> None:
    assert len(compartments_param(value)) == len(value)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        pytest.param(None, "list of 1 to 64", id="missing"),
        pytest.param({"1": WALKER}, "list of 1 to 64", id="object"),
        pytest.param("walker", "list of 1 to 64", id="text"),
        pytest.param([], "list of 1 to 64", id="empty"),
        pytest.param(numbered(MAX_COMPARTMENTS + 1), "list of 1 to 64", id="sixty-five"),
        pytest.param([WALKER, "walker"], "must be an object", id="entry-text"),
        pytest.param([[1, "Walker", "walker"]], "must be an object", id="entry-list"),
        pytest.param([WALKER, {**CART, "number": 1}], "unique", id="duplicate"),
        pytest.param([{**WALKER, "number": 0}], "from 1 to 64", id="number-0"),
        pytest.param([{**WALKER, "number": 65}], "from 1 to 64", id="number-65"),
        pytest.param([{**WALKER, "number": -1}], "from 1 to 64", id="number-negative"),
        pytest.param([{**WALKER, "number": "1"}], "whole number", id="number-text"),
        pytest.param([{**WALKER, "number": 1.0}], "whole number", id="number-float"),
        pytest.param([{**WALKER, "number": 1.5}], "whole number", id="number-fraction"),
        pytest.param([{**WALKER, "number": True}], "whole number", id="number-true"),
        pytest.param([{**WALKER, "number": False}], "whole number", id="number-false"),
        pytest.param([{**WALKER, "number": None}], "whole number", id="number-null"),
        pytest.param([{"item": "Walker", "item_type": "walker"}], "whole number", id="no-number"),
        pytest.param([{**WALKER, "item": ""}], "compartment 1: item", id="item-empty"),
        pytest.param([{**WALKER, "item": "   "}], "compartment 1: item", id="item-blank"),
        pytest.param([{**WALKER, "item": None}], "compartment 1: item", id="item-null"),
        pytest.param([{**WALKER, "item": 7}], "compartment 1: item", id="item-number"),
        pytest.param([{**WALKER, "item": "x" * 65}], "compartment 1: item", id="item-too-long"),
        pytest.param([{"number": 1, "item_type": "walker"}], "compartment 1: item", id="no-item"),
        pytest.param([{**WALKER, "item_type": "hand-cart"}], "item_type", id="type-dash"),
        pytest.param([{**WALKER, "item_type": "hand cart"}], "item_type", id="type-space"),
        pytest.param([{**WALKER, "item_type": "wägelchen"}], "item_type", id="type-umlaut"),
        pytest.param([{**WALKER, "item_type": "walker!"}], "item_type", id="type-punctuation"),
        pytest.param([{**WALKER, "item_type": "a/b"}], "item_type", id="type-slash"),
        pytest.param([{**WALKER, "item_type": ""}], "item_type", id="type-empty"),
        pytest.param([{**WALKER, "item_type": "  "}], "item_type", id="type-blank"),
        pytest.param([{**WALKER, "item_type": "a" * 33}], "item_type", id="type-too-long"),
        pytest.param([{**WALKER, "item_type": None}], "item_type", id="type-null"),
        pytest.param([{**WALKER, "item_type": ["walker"]}], "item_type", id="type-list"),
        pytest.param([{"number": 1, "item": "Walker"}], "item_type", id="no-item-type"),
    ],
)
def test_compartments_refused(value: Any, needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        compartments_param(value)


# -- locker_bank_params -------------------------------------------------------------------------


def test_locker_bank_defaults() -> None:
    assert locker_bank_params({"compartments": [CART, WALKER]}) == {
        "compartments": [
            {"number": 1, "item": "Walker", "item_type": "walker"},
            {"number": 2, "item": "Hand cart", "item_type": "hand_cart"},
        ],
        "pickup_window_min": 120,
        "loan_period_min": 240,
    }


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("pickup_window_min", 1, 1),
        ("pickup_window_min", 7 * 1440, 7 * 1440),
        ("pickup_window_min", 30.0, 30),
        ("loan_period_min", 1, 1),
        ("loan_period_min", 30 * 1440, 30 * 1440),
    ],
)
def test_locker_bank_periods_accepted(key: str, value: Any, expected: int) -> None:
    params = locker_bank_params({"compartments": [WALKER], key: value})
    assert params[key] == expected
    assert type(params[key]) is int


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("pickup_window_min", 0),
        ("pickup_window_min", 7 * 1440 + 1),
        ("pickup_window_min", 1.5),
        ("pickup_window_min", True),
        ("pickup_window_min", "120"),
        ("pickup_window_min", None),
        ("pickup_window_min", float("nan")),
        ("loan_period_min", 0),
        ("loan_period_min", -240),
        ("loan_period_min", 30 * 1440 + 1),
        ("loan_period_min", float("inf")),
        ("loan_period_min", 10**400),
    ],
)
def test_locker_bank_periods_refused(key: str, value: Any) -> None:
    with pytest.raises(ValueError, match=key):
        locker_bank_params({"compartments": [WALKER], key: value})


# -- the asset file -----------------------------------------------------------------------------

VALID = collection(
    bank(
        "Locker Nord",
        compartments=[CART, WALKER],
        pickup_window_min=60,
        loan_period_min=480,
        gis_id="LB-0001",
        opening_hours={"mo-fr": "06:00-22:00"},
        note=None,
    ),
    bank(
        "Locker Süd",
        source={"kind": "zha", "device": "0x00124B0029ABCDEF"},
        compartments=[{"number": 3, "item": "Rollstuhl", "item_type": "Wheelchair"}],
    ),
)


def test_valid_locker_banks() -> None:
    north, south = parse_asset_file(VALID)
    assert north == Asset(
        kind="locker_bank",
        name="Locker Nord",
        latitude=53.7021,
        longitude=10.0012,
        source_kind="native",
        device="locker-nord",
        params={
            "compartments": [
                {"number": 1, "item": "Walker", "item_type": "walker"},
                {"number": 2, "item": "Hand cart", "item_type": "hand_cart"},
            ],
            "pickup_window_min": 60,
            "loan_period_min": 480,
        },
        extra={"gis_id": "LB-0001", "opening_hours": {"mo-fr": "06:00-22:00"}, "note": None},
    )
    assert (south.source_kind, south.device) == ("zha", "00:12:4b:00:29:ab:cd:ef")
    assert south.params == {
        "compartments": [{"number": 3, "item": "Rollstuhl", "item_type": "wheelchair"}],
        "pickup_window_min": 120,
        "loan_period_min": 240,
    }
    assert south.extra == {}


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        pytest.param(
            {"kind": "zigbee2mqtt", "device": "locker"}, "source.kind must be one of native, zha"
        ),
        pytest.param({"kind": "ttn", "device": "locker"}, "source.kind must be one of native, zha"),
        pytest.param(
            {"kind": "chirpstack", "device": "a84041000181c0de"},
            "source.kind must be one of native, zha",
        ),
        pytest.param({"kind": "bluetooth", "device": "locker"}, "source.kind must be one of"),
        pytest.param({"kind": "zha", "device": "locker-nord"}, "IEEE"),
        pytest.param({"kind": "native", "device": "locker/nord"}, "MQTT topics"),
        pytest.param({"kind": "native", "device": "locker+"}, "MQTT topics"),
        pytest.param({"kind": "native", "device": ""}, "non-empty"),
        pytest.param(None, "source must be an object"),
    ],
)
def test_locker_bank_source_kinds(source: Any, needle: str) -> None:
    (problem,) = problems_of(collection(bank(source=source)))
    assert problem.startswith("feature 0 (Locker Nord): ")
    assert needle in problem


@pytest.mark.parametrize(
    ("props", "needle"),
    [
        pytest.param({"compartments": None}, "list of 1 to 64", id="missing"),
        pytest.param({"compartments": []}, "list of 1 to 64", id="empty"),
        pytest.param({"compartments": numbered(65)}, "list of 1 to 64", id="too-many"),
        pytest.param({"compartments": [WALKER, WALKER]}, "unique", id="duplicate"),
        pytest.param({"compartments": [{**WALKER, "number": 0}]}, "from 1 to 64", id="number-0"),
        pytest.param({"compartments": [{**WALKER, "number": 65}]}, "from 1 to 64", id="number-65"),
        pytest.param({"compartments": [{**WALKER, "number": "1"}]}, "whole number", id="text"),
        pytest.param({"compartments": [{**WALKER, "number": 1.0}]}, "whole number", id="float"),
        pytest.param({"compartments": [{**WALKER, "number": True}]}, "whole number", id="bool"),
        pytest.param({"compartments": [{**WALKER, "item": ""}]}, "item must be", id="item-empty"),
        pytest.param(
            {"compartments": [{**WALKER, "item_type": "hand-cart"}]}, "item_type", id="type-chars"
        ),
        pytest.param({"pickup_window_min": 0}, "pickup_window_min", id="window-0"),
        pytest.param({"loan_period_min": 43_201}, "loan_period_min", id="period-too-long"),
    ],
)
def test_bad_locker_bank_reported(props: dict[str, Any], needle: str) -> None:
    document = collection(bank("Locker Nord", **props), bank("Locker Ost"))
    (problem,) = problems_of(document)
    assert problem.startswith("feature 0 (Locker Nord): ")
    assert needle in problem


def test_compartments_without_the_key_at_all() -> None:
    feature = bank()
    del feature["properties"]["compartments"]
    (problem,) = problems_of(collection(feature))
    assert "compartments must be a list" in problem


def test_locker_bank_names_and_devices_are_unique() -> None:
    document = collection(
        bank("Locker Nord"), bank("locker nord", source=bank()["properties"]["source"])
    )
    problems = problems_of(document)
    assert "name 'locker nord' appears twice" in problems
    assert any("share the device 'locker-nord'" in problem for problem in problems)


def test_locker_bank_export_round_trip() -> None:
    parsed = parse_asset_file(VALID)
    exported = export_asset_file(parsed)
    assert json.loads(json.dumps(exported)) == exported
    assert parse_asset_file(exported) == parsed  # already in export order
    assert export_asset_file(parse_asset_file(exported)) == exported


def test_locker_bank_export_keeps_unknown_properties() -> None:
    exported = export_asset_file(parse_asset_file(VALID))
    north = next(f for f in exported["features"] if f["properties"]["name"] == "Locker Nord")
    assert north == {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [10.0012, 53.7021]},
        "properties": {
            "gis_id": "LB-0001",
            "opening_hours": {"mo-fr": "06:00-22:00"},
            "note": None,
            "kind": "locker_bank",
            "name": "Locker Nord",
            "source": {"kind": "native", "device": "locker-nord"},
            "compartments": [
                {"number": 1, "item": "Walker", "item_type": "walker"},
                {"number": 2, "item": "Hand cart", "item_type": "hand_cart"},
            ],
            "pickup_window_min": 60,
            "loan_period_min": 480,
        },
    }


def test_locker_bank_subentry_round_trip() -> None:
    for asset in parse_asset_file(VALID):
        data = asset.as_subentry_data()
        assert data["source_kind"] in {"native", "zha"}
        assert asset_from_subentry("locker_bank", data) == asset


def container(device: str) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [10.0, 53.7]},
        "properties": {
            "kind": "container",
            "name": "Bin 1",
            "source": {"kind": "native", "device": device},
        },
    }


def test_locker_bank_among_other_kinds() -> None:
    assets = parse_asset_file(collection(bank(), container("bin-1")))
    assert [asset.kind for asset in assets] == ["locker_bank", "container"]


def test_locker_bank_and_container_cannot_share_a_native_device() -> None:
    (problem,) = problems_of(collection(bank(), container("locker-nord")))
    assert "share the device 'locker-nord'" in problem
