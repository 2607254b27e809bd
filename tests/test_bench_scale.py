"""The scale bench's pure parts: /proc parsing and which entities a site must have."""

from __future__ import annotations

from collections import Counter
import json
import os
from pathlib import Path

import pytest
import yaml

from bench.bench_scale import (
    PEER_UNIQUE_PREFIX,
    District,
    StorageWatch,
    asset_file,
    entity_key,
    essential_entity_ids,
    expected_entities,
    fill_text,
    lamp_answer,
    missing_entities,
    peer_yaml,
    proc_cpu_ticks,
    proc_status_kib,
    proc_write_bytes,
    scenarios,
)
from custom_components.city_ops.model.assets import parse_asset_file
from custom_components.city_ops.sources import zigbee2mqtt

STATUS = """Name:\thass
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t 1351232 kB
VmHWM:\t  301912 kB
VmRSS:\t  248896 kB
Threads:\t31
"""
# The command name may hold spaces and parentheses; utime and stime are fields 14 and 15.
STAT = (
    "4242 (python3 (hass) x) S 1 4242 4242 0 -1 4194560 91713 0 3 0 "
    "1234 567 0 0 20 0 31 0 9876 1383612416 62224 18446744073709551615"
)
IO = "rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 5\nwrite_bytes: 6144\n"


def test_proc_status_fields() -> None:
    assert proc_status_kib(STATUS, "VmRSS") == 248896
    assert proc_status_kib(STATUS, "VmHWM") == 301912
    with pytest.raises(ValueError, match="VmSwap"):
        proc_status_kib(STATUS, "VmSwap")


def test_proc_cpu_ticks_counted_after_the_command_name() -> None:
    assert proc_cpu_ticks(STAT) == 1234 + 567


def test_proc_io_write_bytes() -> None:
    assert proc_write_bytes(IO) == 6144
    with pytest.raises(ValueError, match="write_bytes"):
        proc_write_bytes("rchar: 1\n")


def test_own_process_readable() -> None:
    """The parsers read this very process: fields are where the bench expects them."""
    pid = os.getpid()
    assert proc_status_kib(Path(f"/proc/{pid}/status").read_text(), "VmRSS") > 1000
    assert proc_cpu_ticks(Path(f"/proc/{pid}/stat").read_text()) > 0


def test_expected_entities_of_a_district() -> None:
    district = District("North", "n-", containers=3, masts=2, banks=2, compartments=4)
    assert expected_entities(district) == Counter(
        {
            ("site", "collection_route"): 1,
            ("site", "containers_due"): 1,
            ("container", "fill_level"): 3,
            ("mast", "light"): 2,
            ("locker_bank", "items_available"): 2,
            ("compartment", "compartment"): 8,
            ("compartment", "loan_state"): 8,
        }
    )
    only_bins = expected_entities(District("Site", "", containers=5))
    assert ("mast", "light") not in only_bins
    assert only_bins[("container", "fill_level")] == 5


def _entity(entity_id: str, key: str | None, subentry: str | None, **extra: object) -> dict:
    return {
        "entity_id": entity_id,
        "platform": "city_ops",
        "config_entry_id": "site1",
        "config_subentry_id": subentry,
        "translation_key": key,
        "disabled_by": None,
        **extra,
    }


def test_missing_essential_entities_found_in_the_registry() -> None:
    district = District("North", "n-", containers=2, masts=1, banks=1, compartments=2)
    kinds = {"c1": "container", "c2": "container", "m1": "mast", "b1": "locker_bank"}
    registry = [
        _entity("todo.north_route", "collection_route", None),
        _entity("sensor.north_due", "containers_due", None),
        _entity("sensor.c1_fill", "fill_level", "c1"),
        _entity("binary_sensor.c1_tilt", "tilt", "c1"),  # not essential: ignored
        # c2's fill level was never created (a site over Home Assistant's limit).
        _entity("sensor.c2_fill", "fill_level", "c2", disabled_by="integration"),
        _entity("light.m1", "light", "m1"),
        _entity("sensor.b1_items", "items_available", "b1"),
        _entity("lock.b1_1", "compartment", "b1"),
        _entity("lock.b1_2", "compartment", "b1"),
        _entity("sensor.b1_1_loan", "loan_state", "b1"),
        _entity("sensor.other_site", "fill_level", "x", config_entry_id="site2"),
        _entity("sensor.mqtt_peer", None, None, platform="mqtt"),
    ]
    found = essential_entity_ids(registry, "site1", kinds)
    assert found[("container", "fill_level")] == ["sensor.c1_fill"]
    assert found[("compartment", "compartment")] == ["lock.b1_1", "lock.b1_2"]
    assert missing_entities(expected_entities(district), found) == {
        ("container", "fill_level"): 1,
        ("compartment", "loan_state"): 1,
    }


def test_entity_key_falls_back_to_the_domain() -> None:
    assert entity_key({"entity_id": "light.mast_1", "translation_key": None}) == "light"
    assert entity_key({"entity_id": "sensor.x", "translation_key": "fill_level"}) == "fill_level"


def test_asset_file_is_one_the_integration_accepts() -> None:
    """The generated file parses with the integration's own reader, names and devices unique."""
    district = District("East", "e-", containers=30, masts=25, banks=3, compartments=4)
    document = asset_file(district)
    assets = parse_asset_file(json.loads(json.dumps(document)), [])
    assert Counter(asset.kind for asset in assets) == {
        "container": 30,
        "mast": 25,
        "locker_bank": 3,
    }
    assert len({asset.device for asset in assets}) == len(assets)
    masts = {asset.name: asset for asset in assets if asset.kind == "mast"}
    for mast in masts.values():  # every neighbour is a mast of the same path
        assert set(mast.params["neighbours"]) <= masts.keys()


def test_city_scenario_sizes() -> None:
    full = scenarios(quick=False)
    assert [scenario.assets for scenario in full] == [1000, 5000, 10000]
    assert len(full[2].districts) == 4
    assert all(d.masts and d.banks and d.containers for d in full[2].districts)
    assert [scenario.assets for scenario in scenarios(quick=True)] == [200, 1000, 2000]


def test_peer_yaml_is_the_mqtt_sensor_schema() -> None:
    loaded = yaml.safe_load(peer_yaml(["bin-0001", "bin-0002"]))
    sensor = loaded["sensor"][1]
    assert sensor["unique_id"] == f"{PEER_UNIQUE_PREFIX}bin-0002"
    assert sensor["state_topic"].endswith("/devices/bin-0002/up")
    assert "value_json.uplink_message.decoded_payload.distance" in sensor["value_template"]
    assert fill_text(700) == "50.0"  # (1200 + 100 - 700) / 1200


def test_storage_watch_counts_each_new_version(tmp_path: Path) -> None:
    store = tmp_path / "city_ops.site"
    store.write_text("old")
    watch = StorageWatch(tmp_path)
    replacement = tmp_path / "tmp123"
    replacement.write_text("x" * 100)
    replacement.replace(store)  # how Home Assistant writes a store
    watch._scan()
    watch.stop()
    assert watch.written == {"city_ops.site": 100}  # the temporary file is not counted twice
    assert watch.writes["city_ops.site"] == 1


def test_lamps_answer_commands_as_zigbee2mqtt_does() -> None:
    """The bench's luminaires answer what they were told, read by the integration's decoder."""
    states: dict[str, bytes] = {}
    assert lamp_answer("zigbee2mqtt/north-mast-0001/get", b"{}", states) is None  # never told
    told = json.dumps({"transition": 1.0, "state": "ON", "brightness": 127, "color_temp": 333})
    answer = lamp_answer("zigbee2mqtt/north-mast-0001/set", told.encode(), states)
    assert answer is not None
    topic, payload = answer
    assert topic == zigbee2mqtt.state_topic("zigbee2mqtt", "north-mast-0001")
    reading = zigbee2mqtt.decode("zigbee2mqtt", topic, payload)
    assert (reading.device, reading.on, reading.brightness) == ("north-mast-0001", True, 127)
    # Asked again (`/get`), it tells the same; told off, it is dark.
    assert lamp_answer("zigbee2mqtt/north-mast-0001/get", b"", states) == answer
    _, off = lamp_answer("zigbee2mqtt/north-mast-0001/set", b'{"state": "OFF"}', states) or (
        "",
        b"",
    )
    dark = zigbee2mqtt.decode("zigbee2mqtt", topic, off)
    assert (dark.on, dark.brightness) == (False, 0)
    # Uplinks, a device's own state and bad payloads get no answer.
    assert lamp_answer("v3/city-bins@ttn/devices/bin-0001/up", b"{}", states) is None
    assert lamp_answer("zigbee2mqtt/north-mast-0001", b"{}", states) is None
    assert lamp_answer("zigbee2mqtt/north-mast-0002/set", b"not json", states) is None
