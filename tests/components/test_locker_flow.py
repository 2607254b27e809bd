"""The locker_bank subentry flow (add, reconfigure, every error) and the GeoJSON import of banks."""

from __future__ import annotations

from datetime import timedelta
import json
import math
from pathlib import Path
from typing import Any

from homeassistant.config_entries import (
    ConfigEntryState,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er
import probatio as vol
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.config_flow import _validate_locker_bank, _whole
from custom_components.city_ops.const import DOMAIN, TOPIC_DEFAULTS_DATA

from .conftest import SetupSite, locker_bank, start_add, start_reconfigure, subentry

# What the UI sends: number selectors hand back floats.
NEW_BANK: dict[str, Any] = {
    "name": " Locker South ",
    "latitude": 53.6990,
    "longitude": 10.0020,
    "compartments": [
        {"number": 2.0, "item": " Hand cart ", "item_type": "Hand_Cart"},
        {"number": 1.0, "item": "Walker", "item_type": "walker"},
    ],
    "pickup_window_min": 90.0,
    "loan_period_min": 180.0,
    "source_kind": "native",
    "device": " locker-south ",
}


@pytest.fixture
def locker_site() -> MockConfigEntry:
    """The conftest's two banks; Locker North carries an unknown GIS property in `extra`."""
    north = locker_bank(
        "Locker North",
        "locker-north",
        ("Walker", "walker"),
        ("Walker", "walker"),
        ("Hand cart", "hand_cart"),
    )
    north["data"] = {**north["data"], "extra": {"gis_id": "GIS-7"}}
    return MockConfigEntry(
        domain=DOMAIN,
        title="Stadtpark",
        data={"name": "Stadtpark", **TOPIC_DEFAULTS_DATA},
        options={"full_threshold": 80, "due_horizon_h": 24},
        subentries_data=[
            north,
            locker_bank("Locker Lake", "locker-lake", ("Walker", "walker")),
        ],
    )


def default(result: dict[str, Any], name: str) -> Any:
    marker = next(m for m in result["data_schema"].schema if m == name)
    return marker.default() if marker.default is not vol.UNDEFINED else None


def suggested(result: dict[str, Any], name: str) -> Any:
    marker = next(m for m in result["data_schema"].schema if m == name)
    return (marker.description or {}).get("suggested_value")


def north_form(entry: MockConfigEntry, **changes: Any) -> dict[str, Any]:
    """Locker North's data as the reconfigure form sends it back (floats for numbers)."""
    return {**bank_form(subentry(entry, "Locker North").data), **changes}


def bank_form(data: Any) -> dict[str, Any]:
    """A bank's stored data as its form sends it (floats for numbers)."""
    form = {
        key: data[key]
        for key in (
            "name",
            "latitude",
            "longitude",
            "source_kind",
            "device",
            "pickup_window_min",
            "loan_period_min",
        )
    }
    form["compartments"] = [{**c, "number": float(c["number"])} for c in data["compartments"]]
    return form


def stock(hass: HomeAssistant, bank: str, *numbers: int) -> None:
    """The bank reports the items of these compartments inside."""
    for number in numbers:
        async_fire_mqtt_message(
            hass, f"city_ops/{bank}/compartment/{number}/state", '{"item_present": true}'
        )


async def reserve(hass: HomeAssistant, entry: MockConfigEntry, number: int) -> dict[str, Any]:
    stock(hass, "locker-north", number)
    await hass.async_block_till_done()
    device = next(
        d
        for d in dr.async_get(hass).devices
        if d.name == "Locker North" and d.config_entry_id == entry.entry_id
    )
    return await hass.services.async_call(  # type: ignore[return-value]
        DOMAIN,
        "reserve",
        {"device_id": device.id, "compartment": number},
        blocking=True,
        return_response=True,
    )


# -- add -------------------------------------------------------------------------------------


async def test_add_a_locker_bank(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lockers: SetupSite
) -> None:
    entry = await setup_lockers()
    result = await start_add(hass, entry, "locker_bank")
    assert default(result, "name") is None
    assert default(result, "compartments") == []
    assert default(result, "pickup_window_min") == 120
    assert default(result, "loan_period_min") == 240
    assert default(result, "source_kind") == "native"
    assert default(result, "latitude") == hass.config.latitude
    assert default(result, "longitude") == hass.config.longitude
    assert default(result, "device") is None
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_BANK)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Locker South"
    await hass.async_block_till_done()
    added = subentry(entry, "Locker South")
    assert added.unique_id == "native:locker-south"
    assert dict(added.data) == {
        "name": "Locker South",
        "latitude": 53.699,
        "longitude": 10.002,
        "source_kind": "native",
        "device": "locker-south",
        "compartments": [
            {"number": 1, "item": "Walker", "item_type": "walker"},
            {"number": 2, "item": "Hand cart", "item_type": "hand_cart"},
        ],
        "pickup_window_min": 90,
        "loan_period_min": 180,
        "extra": {},
    }
    numbers = [c["number"] for c in added.data["compartments"]]
    assert all(type(n) is int for n in numbers)
    assert type(added.data["pickup_window_min"]) is int
    # The site was rebuilt with the bank: entities, subscriptions, lending.
    assert entry.state is ConfigEntryState.LOADED
    bank = entry.runtime_data.site.locker_banks[added.subentry_id]
    assert bank.spec.pickup_window.total_seconds() == 90 * 60
    assert hass.states.get("lock.locker_south_compartment_2") is not None
    # Nothing lendable until the bank reports its items.
    assert hass.states.get("sensor.locker_south_items_available").attributes["by_item_type"] == {
        "hand_cart": 0,
        "walker": 0,
    }
    stock(hass, "locker-south", 1, 2)
    async_fire_mqtt_message(
        hass, "city_ops/locker-south/compartment/2/state", '{"door": "open", "locked": false}'
    )
    await hass.async_block_till_done()
    assert hass.states.get("lock.locker_south_compartment_2").state == "open"
    assert hass.states.get("sensor.locker_south_items_available").attributes["by_item_type"] == {
        "hand_cart": 1,
        "walker": 1,
    }
    response = await hass.services.async_call(
        DOMAIN,
        "reserve",
        {
            "device_id": next(d.id for d in dr.async_get(hass).devices if d.name == "Locker South"),
            "item_type": "hand_cart",
        },
        blocking=True,
        return_response=True,
    )
    assert response["compartment"] == 2


async def test_add_a_bank_reached_through_zha(
    hass: HomeAssistant, setup_lockers: SetupSite
) -> None:
    entry = await setup_lockers()
    result = await start_add(hass, entry, "locker_bank")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {**NEW_BANK, "source_kind": "zha", "device": "0x000D6F000A9069E7"},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    added = subentry(entry, "Locker South")
    assert added.data["device"] == "00:0d:6f:00:0a:90:69:e7"
    assert added.unique_id == "zha:00:0d:6f:00:0a:90:69:e7"


async def test_add_a_bank_with_a_heartbeat(hass: HomeAssistant, setup_lockers: SetupSite) -> None:
    """A controller that reports at least every 5 minutes: its silence will count."""
    entry = await setup_lockers()
    result = await start_add(hass, entry, "locker_bank")
    assert suggested(result, "report_interval_s") is None
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**NEW_BANK, "report_interval_s": 300.0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    added = subentry(entry, "Locker South")
    assert added.data["report_interval_s"] == 300
    assert type(added.data["report_interval_s"]) is int
    bank = entry.runtime_data.site.locker_banks[added.subentry_id]
    assert bank.spec.report_interval == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"name": "   "}, {"name": "name_required"}),
        ({"report_interval_s": 60.5}, {"report_interval_s": "invalid_report_interval"}),
        ({"name": "x" * 65}, {"name": "name_required"}),
        ({"name": " locker lake "}, {"name": "name_taken"}),
        ({"latitude": math.nan}, {"latitude": "invalid_location"}),
        ({"longitude": math.nan}, {"latitude": "invalid_location"}),
        ({"device": "locker+south"}, {"device": "invalid_device"}),
        ({"device": "locker/south"}, {"device": "invalid_device"}),
        ({"device": "   "}, {"device": "invalid_device"}),
        ({"source_kind": "zha", "device": "locker-south"}, {"device": "invalid_device"}),
        ({"device": "locker-lake"}, {"device": "device_taken"}),
        ({"compartments": []}, {"compartments": "invalid_compartments"}),
        (
            {
                "compartments": [
                    {"number": 1.0, "item": "Walker", "item_type": "walker"},
                    {"number": 1.0, "item": "Walker", "item_type": "walker"},
                ]
            },
            {"compartments": "invalid_compartments"},
        ),
        (
            {"compartments": [{"number": 1.5, "item": "Walker", "item_type": "walker"}]},
            {"compartments": "invalid_compartments"},
        ),
        (
            {"compartments": [{"number": 1.0, "item": "Walker", "item_type": "hand cart"}]},
            {"compartments": "invalid_compartments"},
        ),
        (
            {"compartments": [{"number": 1.0, "item": "  ", "item_type": "walker"}]},
            {"compartments": "invalid_compartments"},
        ),
        ({"pickup_window_min": 1.5}, {"compartments": "invalid_compartments"}),
        (
            {"name": "", "device": "#", "latitude": math.nan},
            {"name": "name_required", "device": "invalid_device", "latitude": "invalid_location"},
        ),
    ],
)
async def test_add_errors(
    hass: HomeAssistant,
    setup_lockers: SetupSite,
    changes: dict[str, Any],
    errors: dict[str, str],
) -> None:
    entry = await setup_lockers()
    result = await start_add(hass, entry, "locker_bank")
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**NEW_BANK, **changes}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    # The form comes back with what was typed, and the corrected input goes through.
    shown = {**NEW_BANK, **changes}
    assert default(result, "compartments") == shown["compartments"]
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_BANK)
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    "changes",
    [
        {"latitude": 91},
        {"pickup_window_min": 0},
        {"loan_period_min": 30 * 1440 + 1},
        {"report_interval_s": 9},
        {"report_interval_s": 86_401},
        {"source_kind": "ttn"},
        {"compartments": [{"number": 65.0, "item": "Walker", "item_type": "walker"}]},
        {"compartments": [{"number": 1.0, "item": "Walker"}]},
        {"compartments": [{"number": 1.0, "item": "W", "item_type": "w", "colour": "red"}]},
        {"compartments": "1: Walker"},
    ],
)
async def test_the_form_refuses_what_its_selectors_cannot_hold(
    hass: HomeAssistant, setup_lockers: SetupSite, changes: dict[str, Any]
) -> None:
    entry = await setup_lockers()
    result = await start_add(hass, entry, "locker_bank")
    with pytest.raises(InvalidData):
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {**NEW_BANK, **changes}
        )


def test_validation_without_the_form() -> None:
    """Anything that is not a compartment object is refused (the import shares the rules)."""
    entry = MockConfigEntry(domain=DOMAIN, data={"name": "Site"})
    for compartments in (["1: Walker"], [None], "Walker", None):
        data, errors = _validate_locker_bank(
            entry, {**NEW_BANK, "compartments": compartments}, None
        )
        assert errors == {"compartments": "invalid_compartments"}
        assert "compartments" not in data
        assert data["extra"] == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3.0, 3), (3, 3), (2.5, 2.5), ("3", "3"), (None, None), (True, True), (-0.0, 0)],
)
def test_whole(value: Any, expected: Any) -> None:
    assert _whole(value) == expected
    assert type(_whole(value)) is type(expected)


# -- reconfigure -----------------------------------------------------------------------------


async def test_reconfigure_keeps_extra_and_bookings(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lockers: SetupSite
) -> None:
    entry = await setup_lockers()
    booking = await reserve(hass, entry, 1)
    result = await start_reconfigure(hass, entry, "locker_bank", "Locker North")
    data = subentry(entry, "Locker North").data
    for key in ("name", "latitude", "longitude", "source_kind", "device", "compartments"):
        assert default(result, key) == data[key]
    assert default(result, "pickup_window_min") == 120
    changed = north_form(entry, name="Locker North Gate", pickup_window_min=45.0)
    changed["compartments"] = [
        changed["compartments"][0],
        {"number": 2.0, "item": "Rollator", "item_type": "walker"},
        changed["compartments"][2],
        {"number": 4.0, "item": "Umbrella", "item_type": "umbrella"},
    ]
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], changed)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    updated = subentry(entry, "Locker North Gate")
    assert updated.data["extra"] == {"gis_id": "GIS-7"}
    assert updated.data["pickup_window_min"] == 45
    assert updated.data["compartments"][1] == {
        "number": 2,
        "item": "Rollator",
        "item_type": "walker",
    }
    assert updated.unique_id == "native:locker-north"
    # Rebuilt: the new compartment has its entities, the booking survived the reload.
    assert entry.state is ConfigEntryState.LOADED
    bank = entry.runtime_data.site.locker_banks[updated.subentry_id]
    assert sorted(bank.compartments) == [1, 2, 3, 4]
    assert bank.compartments[1].status.loan.reservation_id == booking["reservation_id"]
    # Existing entities keep their ids; the new compartment's follow the new name.
    assert hass.states.get("lock.locker_north_gate_compartment_4") is not None
    state = hass.states.get("sensor.locker_north_compartment_1_loan_state")
    assert state.state == "reserved"
    assert state.attributes["pickup_until"] == booking["pickup_until"]
    assert (
        hass.states.get("sensor.locker_north_compartment_2_loan_state").attributes["item"]
        == "Rollator"
    )


async def test_reconfigure_cannot_drop_a_booked_compartment(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lockers: SetupSite
) -> None:
    entry = await setup_lockers()
    await reserve(hass, entry, 1)
    result = await start_reconfigure(hass, entry, "locker_bank", "Locker North")
    without_1 = north_form(entry)
    without_1["compartments"] = without_1["compartments"][1:]
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], without_1)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"compartments": "compartment_in_use"}
    # A free compartment may go.
    without_2 = north_form(entry)
    del without_2["compartments"][1]
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], without_2)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert [c["number"] for c in subentry(entry, "Locker North").data["compartments"]] == [1, 3]
    assert hass.states.get("sensor.locker_north_compartment_1_loan_state").state == "reserved"


async def test_reconfigure_sets_and_clears_the_report_interval(
    hass: HomeAssistant, setup_lockers: SetupSite
) -> None:
    entry = await setup_lockers()
    north_id = subentry(entry, "Locker North").subentry_id
    result = await start_reconfigure(hass, entry, "locker_bank", "Locker North")
    assert suggested(result, "report_interval_s") is None
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], north_form(entry, report_interval_s=120.0)
    )
    assert result["type"] is FlowResultType.ABORT
    await hass.async_block_till_done()
    assert subentry(entry, "Locker North").data["report_interval_s"] == 120
    bank = entry.runtime_data.site.locker_banks[north_id]
    assert bank.spec.report_interval == timedelta(minutes=2)
    # The form shows the interval; emptying the field takes it away again.
    result = await start_reconfigure(hass, entry, "locker_bank", "Locker North")
    assert suggested(result, "report_interval_s") == 120
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], north_form(entry)
    )
    assert result["type"] is FlowResultType.ABORT
    await hass.async_block_till_done()
    assert "report_interval_s" not in subentry(entry, "Locker North").data
    assert entry.runtime_data.site.locker_banks[north_id].spec.report_interval is None


async def test_reconfigure_errors(hass: HomeAssistant, setup_lockers: SetupSite) -> None:
    entry = await setup_lockers()
    result = await start_reconfigure(hass, entry, "locker_bank", "Locker North")
    for changes, errors in (
        ({"name": "Locker Lake"}, {"name": "name_taken"}),
        ({"device": "locker-lake"}, {"device": "device_taken"}),
        ({"name": "  "}, {"name": "name_required"}),
        ({"compartments": []}, {"compartments": "invalid_compartments"}),
    ):
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], north_form(entry, **changes)
        )
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == "reconfigure"
        assert result["errors"] == errors
    # Its own name and device are not "taken".
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], north_form(entry, name="LOCKER NORTH")
    )
    assert result["type"] is FlowResultType.ABORT
    assert subentry(entry, "LOCKER NORTH").data["extra"] == {"gis_id": "GIS-7"}


async def test_reconfigure_an_unloaded_site(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lockers: SetupSite
) -> None:
    """Without a running site there are no bookings to protect (they end with the storage)."""
    entry = await setup_lockers()
    assert await hass.config_entries.async_unload(entry.entry_id)
    result = await start_reconfigure(hass, entry, "locker_bank", "Locker North")
    form = north_form(entry)
    form["compartments"] = form["compartments"][2:]
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert [c["number"] for c in subentry(entry, "Locker North").data["compartments"]] == [3]
    assert subentry(entry, "Locker North").data["extra"] == {"gis_id": "GIS-7"}


# -- import ----------------------------------------------------------------------------------


def bank_feature(name: str, device: str, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [10.0050, 53.7050]},
        "properties": {
            "kind": "locker_bank",
            "name": name,
            "source": {"kind": "native", "device": device},
            "compartments": [
                {"number": 1, "item": "Walker", "item_type": "walker"},
                {"number": 2, "item": "Hand cart", "item_type": "hand_cart"},
            ],
            "pickup_window_min": 60,
            "loan_period_min": 120,
            **props,
        },
    }


async def test_import_a_locker_bank_from_the_asset_file(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lockers: SetupSite, tmp_path: Path
) -> None:
    hass.config.config_dir = str(tmp_path)
    entry = await setup_lockers()
    document = {
        "type": "FeatureCollection",
        "features": [bank_feature("Locker Meadow", "locker-meadow", gis_id="GIS-9")],
    }
    (tmp_path / "lockers.geojson").write_text(json.dumps(document), encoding="utf-8")
    result = await hass.services.async_call(
        DOMAIN,
        "import_assets",
        {"config_entry_id": entry.entry_id, "path": "lockers.geojson"},
        blocking=True,
        return_response=True,
    )
    await hass.async_block_till_done()
    assert result == {"added": ["Locker Meadow"], "updated": [], "unchanged": []}
    added = subentry(entry, "Locker Meadow")
    assert added.subentry_type == "locker_bank"
    assert added.unique_id == "native:locker-meadow"
    assert added.data["extra"] == {"gis_id": "GIS-9"}
    assert (added.data["latitude"], added.data["longitude"]) == (53.705, 10.005)
    for entity_id in (
        "lock.locker_meadow_compartment_1",
        "binary_sensor.locker_meadow_compartment_2_door",
        "sensor.locker_meadow_compartment_2_loan_state",
        "sensor.locker_meadow_items_available",
        "calendar.locker_meadow_reservations",
    ):
        assert hass.states.get(entity_id) is not None, entity_id
    # The item sensor repeats what the loan state says: there, but disabled by default.
    item = er.async_get(hass).async_get("binary_sensor.locker_meadow_compartment_2_item")
    assert item is not None
    assert item.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    async_fire_mqtt_message(
        hass, "city_ops/locker-meadow/compartment/1/state", '{"door": "closed", "locked": true}'
    )
    stock(hass, "locker-meadow", 1, 2)
    await hass.async_block_till_done()
    assert hass.states.get("lock.locker_meadow_compartment_1").state == "locked"
    assert hass.states.get("sensor.locker_meadow_items_available").attributes["by_item_type"] == {
        "hand_cart": 1,
        "walker": 1,
    }

    # The same file again changes nothing; a bank on another bank's device is refused whole.
    again = await hass.services.async_call(
        DOMAIN,
        "import_assets",
        {"config_entry_id": entry.entry_id, "path": "lockers.geojson"},
        blocking=True,
        return_response=True,
    )
    assert again == {"added": [], "updated": [], "unchanged": ["Locker Meadow"]}
    clash = {
        "type": "FeatureCollection",
        "features": [
            bank_feature("Locker Hill", "locker-lake"),
            bank_feature("Locker Pond", "locker-pond", compartments=[{"number": 0}]),
        ],
    }
    (tmp_path / "clash.geojson").write_text(json.dumps(clash), encoding="utf-8")
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN,
            "import_assets",
            {"config_entry_id": entry.entry_id, "path": "clash.geojson"},
            blocking=True,
            return_response=True,
        )
    assert raised.value.translation_key == "invalid_asset_file"
    assert raised.value.translation_placeholders["count"] == "2"
    assert "Locker Hill" not in {s.title for s in entry.subentries.values()}
