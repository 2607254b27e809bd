"""Faults and floods inside Home Assistant: bounded logs, undeliverable commands, stale entries."""

from __future__ import annotations

from datetime import timedelta
import json
import logging
from pathlib import Path
from types import MappingProxyType
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.mqtt.models import DATA_MQTT
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.const import DOMAIN, TOPIC_DEFAULTS_DATA
from custom_components.city_ops.diagnostics import async_get_config_entry_diagnostics
from custom_components.city_ops.model.locker import Keypad
from custom_components.city_ops.throttled_log import ThrottledLog

from .conftest import SetupSite, locker_bank
from .lockers import LOCK, UNLOCK, bank_device, call, commands, loan_state, report, unlocks


class Clock:
    """time.monotonic for the throttled log, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freeze the throttled log's clock."""
    fake = Clock()
    monkeypatch.setattr("custom_components.city_ops.throttled_log.time.monotonic", fake)
    return fake


def test_one_line_per_kind_and_period_and_a_budget_over_all_kinds(
    caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    """Repeats of a kind are counted; even a caller keying per topic gets a bounded log."""
    log = ThrottledLog(logging.getLogger("test.throttled"), period_s=600, lines_per_period=100)
    with caplog.at_level(logging.INFO, "test.throttled"):
        kind = "bad_json"
        for n in range(1000):
            log.warning(kind, "bad %s", n)
        assert len(caplog.records) == 1
        assert log.suppressed == 999
        for n in range(5000):  # a key per message: the mistake the budget is there for
            log.info(f"topic-{n}", "unique %s", n)
        assert len(caplog.records) == 100
        clock.now += 600
        log.exception(kind, "again")
        log.warning(kind, "not yet")
        assert len(caplog.records) == 101
    assert log.suppressed == 999 + 4901 + 1


async def test_a_flood_on_unique_topics_adds_a_bounded_number_of_lines(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    setup_site: SetupSite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """12,000 undecodable uplinks, each from its own TTN device: a line per kind, all counted."""
    entry: MockConfigEntry = await setup_site()
    flood = 12_000
    with caplog.at_level(logging.INFO):
        for n in range(flood):
            topic = f"v3/app@ttn/devices/intruder-{n}/up"
            payload = b"\xff not json" if n % 2 else json.dumps({"uplink_message": {}})
            async_fire_mqtt_message(hass, topic, payload)
        await hass.async_block_till_done()
    ours = [r for r in caplog.records if r.name.startswith(f"custom_components.{DOMAIN}")]
    assert 1 <= len(ours) <= 3, [r.getMessage()[:120] for r in ours]
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    messages = diagnostics["messages"]
    assert messages["received"] == flood
    assert messages["rejected_total"] + messages["unknown_devices"] == flood
    assert len(ours) + messages["log_lines_suppressed"] == flood


# -- commands that get through or say so ------------------------------------------------------


@pytest.fixture
async def north(hass: HomeAssistant, setup_lockers: SetupSite) -> tuple[MockConfigEntry, str]:
    """The locker site, every compartment closed, locked and full; Locker North's device."""
    entry = await setup_lockers()
    for bank, numbers in (("locker-north", (1, 2, 3)), ("locker-lake", (1,))):
        for number in numbers:
            report(hass, bank, number, door="closed", locked=True, item_present=True)
    await hass.async_block_till_done()
    return entry, bank_device(hass, entry.entry_id, "Locker North")


def broker(hass: HomeAssistant, connected: bool) -> None:
    """Home Assistant's MQTT client loses (or regains) its broker."""
    hass.data[DATA_MQTT].client.connected = connected


def keypad(hass: HomeAssistant, code: str, **fields: Any) -> None:
    async_fire_mqtt_message(
        hass, "city_ops/locker-north/keypad", json.dumps({"code": code, **fields})
    )


def keypad_of(entry: MockConfigEntry) -> Keypad:
    runtime = entry.runtime_data
    for asset_id, bank in runtime.site.locker_banks.items():
        if runtime.assets[asset_id].device == "locker-north":
            return bank.keypad
    raise AssertionError("no Locker North")


async def refused(hass: HomeAssistant, key: str, service: str, **data: Any) -> None:
    with pytest.raises(HomeAssistantError) as raised:
        await call(hass, service, **data)
    assert (raised.value.translation_domain, raised.value.translation_key) == (DOMAIN, key)


async def test_broker_down_the_code_is_neither_used_nor_counted(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, north: tuple[MockConfigEntry, str]
) -> None:
    """The service fails with a translated error; after reconnecting the same code opens."""
    entry, device_id = north
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    mqtt_mock.async_publish.reset_mock()
    broker(hass, False)
    await refused(
        hass, "locker_bank_unreachable", "release_code", device_id=device_id, code=booking["code"]
    )
    await refused(
        hass, "locker_bank_unreachable", "open_for_maintenance", device_id=device_id, compartment=2
    )
    with pytest.raises(HomeAssistantError) as raised:
        await hass.services.async_call(
            "lock", "lock", {"entity_id": "lock.locker_north_compartment_3"}, blocking=True
        )
    assert raised.value.translation_key == "locker_bank_unreachable"
    await hass.async_block_till_done()
    assert commands(mqtt_mock) == []
    bank = entry.runtime_data.site.locker_banks
    assert all(
        c.status.unlocked_for is None for b in bank.values() for c in b.compartments.values()
    )
    assert keypad_of(entry).failures == 0
    assert loan_state(hass, "locker-north", 1) == "reserved"

    broker(hass, True)
    assert await call(hass, "release_code", device_id=device_id, code=booking["code"]) == {
        "compartment": 1
    }
    await hass.async_block_till_done()
    assert unlocks(mqtt_mock) == ["city_ops/locker-north/compartment/1/set"]


async def test_a_publish_that_fails_takes_the_unlock_back(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, north: tuple[MockConfigEntry, str]
) -> None:
    """Connected, but the publish is refused: LOCK follows, the code works once more."""
    entry, device_id = north
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    mqtt_mock.async_publish.reset_mock()
    mqtt_mock.async_publish.side_effect = HomeAssistantError("broker gone")
    try:
        keypad(hass, booking["code"])
        await hass.async_block_till_done()
    finally:
        mqtt_mock.async_publish.side_effect = None
    assert [payload for _, payload in commands(mqtt_mock)] == [UNLOCK, LOCK]
    assert entry.runtime_data.lending.unreachable == 1
    assert keypad_of(entry).failures == 0
    mqtt_mock.async_publish.reset_mock()
    keypad(hass, booking["code"])
    await hass.async_block_till_done()
    assert unlocks(mqtt_mock) == ["city_ops/locker-north/compartment/1/set"]


async def test_a_light_that_cannot_be_reached_says_so(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, setup_lighting: SetupSite
) -> None:
    await setup_lighting()
    mqtt_mock.async_publish.reset_mock()
    broker(hass, False)
    for service in ("turn_on", "turn_off"):
        with pytest.raises(HomeAssistantError) as raised:
            await hass.services.async_call(
                "light", service, {"entity_id": "light.m1"}, blocking=True
            )
        assert (raised.value.translation_domain, raised.value.translation_key) == (
            DOMAIN,
            "mast_unreachable",
        )
    await hass.async_block_till_done()
    assert [c for c in mqtt_mock.async_publish.call_args_list if "mast-1" in c.args[0]] == []
    broker(hass, True)
    await hass.services.async_call("light", "turn_on", {"entity_id": "light.m1"}, blocking=True)
    await hass.async_block_till_done()
    assert [c for c in mqtt_mock.async_publish.call_args_list if "mast-1/set" in c.args[0]]


# -- keypad entries: stale, redelivered ---------------------------------------------------------


@pytest.mark.parametrize(
    ("age_s", "opens"),
    [(0, True), (9, True), (11, False), (21, False), (-30, False)],
)
@pytest.mark.parametrize("as_text", [False, True])
async def test_a_stale_keypad_entry_opens_nothing_and_counts_not(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    north: tuple[MockConfigEntry, str],
    age_s: int,
    opens: bool,
    as_text: bool,
) -> None:
    """An entry queued by the bank during an outage arrives late: nobody stands at the door."""
    entry, device_id = north
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    mqtt_mock.async_publish.reset_mock()
    typed = dt_util.utcnow() - timedelta(seconds=age_s)
    stamp: Any = typed.isoformat() if as_text else typed.timestamp()
    keypad(hass, booking["code"], ts=stamp)
    await hass.async_block_till_done()
    lending = entry.runtime_data.lending
    if opens:
        assert unlocks(mqtt_mock) == ["city_ops/locker-north/compartment/1/set"]
        assert lending.stale_entries == 0
    else:
        assert unlocks(mqtt_mock) == []
        assert lending.stale_entries == 1
        assert keypad_of(entry).failures == 0
        assert loan_state(hass, "locker-north", 1) == "reserved"


async def test_an_unreadable_timestamp_is_refused_and_counted(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, north: tuple[MockConfigEntry, str]
) -> None:
    entry, device_id = north
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    mqtt_mock.async_publish.reset_mock()
    for stamp in ("yesterday", True, 12, "2026-12-03T10:00:00"):
        keypad(hass, booking["code"], ts=stamp)
    await hass.async_block_till_done()
    assert unlocks(mqtt_mock) == []
    assert entry.runtime_data.stats.rejected["bad_timestamp"] == 4
    assert keypad_of(entry).failures == 0


async def test_a_redelivered_entry_is_recognised(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, north: tuple[MockConfigEntry, str]
) -> None:
    """QoS 1 may deliver an entry twice: the second opens nothing and is no wrong code."""
    entry, device_id = north
    booking = await call(hass, "reserve", device_id=device_id, compartment=1)
    mqtt_mock.async_publish.reset_mock()
    keypad(hass, booking["code"])
    keypad(hass, booking["code"])
    await hass.async_block_till_done()
    report(hass, "locker-north", 1, door="open", locked=False)
    await hass.async_block_till_done()
    keypad(hass, booking["code"])  # the borrower, unsure, types it again
    await hass.async_block_till_done()
    assert unlocks(mqtt_mock) == ["city_ops/locker-north/compartment/1/set"]
    assert entry.runtime_data.lending.codes_repeated == 2
    assert keypad_of(entry).failures == 0
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["lockers"]["codes_repeated"] == 2


# -- safe file services ---------------------------------------------------------------------------


@pytest.fixture
async def site_dir(
    hass: HomeAssistant, setup_lockers: SetupSite, tmp_path: Path
) -> tuple[MockConfigEntry, Path]:
    """The locker site with its config dir in a temporary folder."""
    hass.config.config_dir = str(tmp_path)
    (tmp_path / ".storage").mkdir()
    return await setup_lockers(), tmp_path


@pytest.mark.parametrize(
    ("service", "path", "key"),
    [
        ("import_assets", "assets\x00.geojson", "path_invalid"),
        ("export_assets", "assets.geojson\x00.yaml", "path_invalid"),
        ("export_assets", "   ", "path_invalid"),
        ("export_assets", "configuration.yaml", "export_suffix"),
        ("export_assets", "secrets.yaml", "export_suffix"),
        ("export_assets", "other.json", "export_would_overwrite"),
        ("export_assets", "broken.geojson", "export_would_overwrite"),
        ("export_assets", "folder.json", "export_would_overwrite"),
        ("import_assets", "deep.geojson", "file_unreadable"),
        ("import_assets", "huge.geojson", "file_unreadable"),
        ("import_assets", "folder.json", "file_unreadable"),
    ],
)
async def test_file_services_refuse_hostile_paths_and_files(
    hass: HomeAssistant, site_dir: tuple[MockConfigEntry, Path], service: str, path: str, key: str
) -> None:
    """A translated refusal, never a traceback; nothing that is not an asset file is replaced."""
    entry, config_dir = site_dir
    (config_dir / "configuration.yaml").write_text("default_config:\n")
    (config_dir / "other.json").write_text('{"keep": "me"}')
    (config_dir / "broken.geojson").write_text('{"type": "FeatureCollection", "features": [')
    (config_dir / "folder.json").mkdir()
    (config_dir / "deep.geojson").write_text("[" * 5000 + "]" * 5000)
    (config_dir / "huge.geojson").write_bytes(b" " * (10 * 1024 * 1024 + 1))
    before = {p.name: p.read_bytes() for p in config_dir.iterdir() if p.is_file()}
    await refused(hass, key, service, config_entry_id=entry.entry_id, path=path)
    after = {p.name: p.read_bytes() for p in config_dir.iterdir() if p.is_file()}
    assert after == before


async def test_export_replaces_only_its_own_asset_file(
    hass: HomeAssistant, site_dir: tuple[MockConfigEntry, Path]
) -> None:
    entry, config_dir = site_dir
    for _ in range(2):  # the second export replaces the first
        answer = await call(hass, "export_assets", config_entry_id=entry.entry_id, path="a.geojson")
        assert answer["count"] == 2
    document = json.loads((config_dir / "a.geojson").read_text("utf-8"))
    assert len(document["features"]) == 2
    # A file nested just within the limit imports (as unchanged assets).
    document["features"][0]["properties"]["note"] = {"a": [[[[[{"b": 1}]]]]]}
    (config_dir / "b.geojson").write_text(json.dumps(document))
    answer = await call(hass, "import_assets", config_entry_id=entry.entry_id, path="b.geojson")
    assert sorted(answer["unchanged"] + answer["updated"]) == ["Locker Lake", "Locker North"]


# -- stable bank identity ----------------------------------------------------------------------


async def test_a_new_bank_device_is_on_disk_when_setup_ends(
    hass: HomeAssistant, hass_storage: dict[str, Any], setup_lockers: SetupSite
) -> None:
    """Not 10 s later: a crash right after adding a bank must not give it a new device id."""
    entry = await setup_lockers()
    north = bank_device(hass, entry.entry_id, "Locker North")
    lake = bank_device(hass, entry.entry_id, "Locker Lake")
    stored = {device["id"] for device in hass_storage["core.device_registry"]["data"]["devices"]}
    assert {north, lake} <= stored

    # A bank added later (the site reloads) is written at once, too.
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType(
                dict(locker_bank("Locker Meadow", "locker-meadow", ("Walker", "walker"))["data"])
            ),
            subentry_type="locker_bank",
            title="Locker Meadow",
            unique_id="native:locker-meadow",
        ),
    )
    await hass.async_block_till_done()
    meadow = bank_device(hass, entry.entry_id, "Locker Meadow")
    stored = {device["id"] for device in hass_storage["core.device_registry"]["data"]["devices"]}
    assert meadow in stored


# -- availability from the devices ----------------------------------------------------------------


async def test_a_silent_bank_makes_its_compartments_unavailable_logged_once_each_way(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A controller with a 60 s heartbeat that misses three reports is gone until it reports."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Stadtpark",
        data={"name": "Stadtpark", **TOPIC_DEFAULTS_DATA},
        subentries_data=[
            locker_bank("Locker North", "locker-north", ("Walker", "walker"), report_interval_s=60)
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    report(hass, "locker-north", 1, door="closed", locked=True, item_present=True)
    await hass.async_block_till_done()
    lock = "lock.locker_north_compartment_1"
    assert hass.states.get(lock).state == "locked"

    def lines(text: str) -> int:
        return sum(text in record.getMessage() for record in caplog.records)

    for _ in range(20):  # 200 s in lending ticks; three missed 60 s reports after 180 s
        freezer.tick(timedelta(seconds=10))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    assert hass.states.get(lock).state == "unavailable"
    assert hass.states.get("sensor.locker_north_compartment_1_loan_state").state == "unavailable"
    assert lines("Locker North is unavailable") == 1
    for _ in range(10):
        freezer.tick(timedelta(seconds=10))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    assert lines("Locker North is unavailable") == 1

    report(hass, "locker-north", 1, door="closed", locked=True, item_present=True)
    await hass.async_block_till_done()
    assert hass.states.get(lock).state == "locked"
    assert lines("Locker North reports again") == 1


async def test_a_bank_without_a_heartbeat_stays_available(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    north: tuple[MockConfigEntry, str],
) -> None:
    """Controllers that only report changes say nothing by silence."""
    freezer.tick(timedelta(days=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get("lock.locker_north_compartment_1").state == "locked"
