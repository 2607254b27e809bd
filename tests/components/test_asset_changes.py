"""One container added, changed or removed touches that container only: no site reload.

The proof that the site did not reload: its runtime is the same object afterwards, and the
other assets' entities kept their state objects (a reload takes them away and back).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from aiohttp import WSMsgType
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import HomeAssistant, State
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient, WebSocketGenerator

from custom_components.city_ops import budget, services
from custom_components.city_ops.const import DOMAIN, TOPIC_DEFAULTS_DATA

from .conftest import BIN_42, SetupSite, container, untouched
from .test_config_flow import NEW_CONTAINER
from .test_containers import ttn

OTHERS = ("sensor.bin_0042_fill_level", "sensor.glass_7_fill_level", "sensor.native_1_fill_level")


def snapshot(hass: HomeAssistant) -> dict[str, State]:
    states = {entity_id: hass.states.get(entity_id) for entity_id in OTHERS}
    assert all(states.values())
    return states  # type: ignore[return-value]


async def test_adding_a_container_keeps_the_site_running(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    runtime = entry.runtime_data
    before = snapshot(hass)
    events = async_capture_events(hass, EVENT_STATE_CHANGED)

    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "container"), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], NEW_CONTAINER)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    assert entry.runtime_data is runtime
    untouched(hass, before, events)
    # The new container has its entity and is fed over the (shared) TTN subscription.
    async_fire_mqtt_message(hass, "v3/city-bins@ttn/devices/bin-0099/up", ttn(distance=80 + 450))
    await hass.async_block_till_done()
    state = hass.states.get("sensor.bin_0099_fill_level")
    assert state is not None
    assert state.state == "50.0"
    assert state.attributes["waste_kind"] == "paper"


async def test_changing_a_container_moves_its_subscription_and_keeps_its_state(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    runtime = entry.runtime_data
    async_fire_mqtt_message(hass, "zigbee2mqtt/tuya level 1", '{"liquid_level_percent": 40}')
    await hass.async_block_till_done()
    assert hass.states.get("sensor.tuya_1_fill_level").state == "40.0"
    before = snapshot(hass)
    events = async_capture_events(hass, EVENT_STATE_CHANGED)
    tuya = next(s for s in entry.subentries.values() if s.title == "Tuya 1")

    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "container"),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": tuya.subentry_id},
    )
    changed = {
        **{k: v for k, v in BIN_42.items() if k != "extra"},
        "name": "Tuya 2",
        "latitude": 53.71,
        "waste_kind": "glass",
        "source_kind": "zigbee2mqtt",
        "device": "tuya level 2",
    }
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], changed)
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()

    assert entry.runtime_data is runtime
    untouched(hass, before, events)
    # Same entity, renamed with its device, still showing what it knew, now at its new place.
    state = hass.states.get("sensor.tuya_1_fill_level")
    assert state is not None
    assert state.state == "40.0"
    assert state.name == "Tuya 2 Fill level"
    assert (state.attributes["latitude"], state.attributes["waste_kind"]) == (53.71, "glass")
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, tuya.subentry_id), entry.entry_id
    )
    assert device is not None
    assert (device.name, device.model) == ("Tuya 2", "Glass container")
    # The old device's topic is no longer followed; the new one is.
    received = runtime.stats.received
    async_fire_mqtt_message(hass, "zigbee2mqtt/tuya level 1", '{"liquid_level_percent": 90}')
    await hass.async_block_till_done()
    assert runtime.stats.received == received
    async_fire_mqtt_message(hass, "zigbee2mqtt/tuya level 2", '{"liquid_level_percent": 60}')
    await hass.async_block_till_done()
    assert hass.states.get("sensor.tuya_1_fill_level").state == "60.0"


async def test_removing_a_container_cleans_the_registries_and_its_topic(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    entry = await setup_site()
    runtime = entry.runtime_data
    before = snapshot(hass)
    events = async_capture_events(hass, EVENT_STATE_CHANGED)
    tuya = next(s for s in entry.subentries.values() if s.title == "Tuya 1")

    assert hass.config_entries.async_remove_subentry(entry, tuya.subentry_id)
    await hass.async_block_till_done()

    assert entry.runtime_data is runtime
    untouched(hass, before, events)
    assert tuya.subentry_id not in runtime.site.containers
    assert hass.states.get("sensor.tuya_1_fill_level") is None
    assert not [
        e
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if e.config_subentry_id == tuya.subentry_id
    ]
    assert (
        dr.async_get(hass).async_get_device_by_identifier(
            (DOMAIN, tuya.subentry_id), entry.entry_id
        )
        is None
    )
    received = runtime.stats.received
    async_fire_mqtt_message(hass, "zigbee2mqtt/tuya level 1", '{"liquid_level_percent": 90}')
    await hass.async_block_till_done()
    assert runtime.stats.received == received


def write_bins(hass: HomeAssistant, path: Path, count: int) -> None:
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [10.0 + n / 10_000, 53.7]},
            "properties": {
                "kind": "container",
                "name": f"Paper {n:04d}",
                "source": {"kind": "ttn", "device": f"bin-{n:04d}-new"},
            },
        }
        for n in range(count)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    hass.config.config_dir = str(path.parent)


async def test_an_import_of_2000_containers_adds_them_in_place(
    hass: HomeAssistant, setup_site: SetupSite, tmp_path: Path
) -> None:
    entry = await setup_site()
    runtime = entry.runtime_data
    before = snapshot(hass)
    events = async_capture_events(hass, EVENT_STATE_CHANGED)
    write_bins(hass, tmp_path / "bins.geojson", 2000)

    result = await hass.services.async_call(
        DOMAIN,
        "import_assets",
        {"config_entry_id": entry.entry_id, "path": "bins.geojson"},
        blocking=True,
        return_response=True,
    )
    await hass.async_block_till_done()
    assert result is not None
    assert len(result["added"]) == 2000

    assert entry.runtime_data is runtime
    untouched(hass, before, events)
    levels = [
        e
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if e.translation_key == "fill_level" and e.disabled_by is None
    ]
    assert len(levels) == 2004
    assert all(hass.states.get(e.entity_id) for e in levels)
    async_fire_mqtt_message(hass, "v3/city-bins@ttn/devices/bin-1999-new/up", ttn(distance=700))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.paper_1999_fill_level").state == "50.0"


@pytest.mark.parametrize(("batch", "kept"), [(None, True), (100_000, False)])
async def test_an_import_does_not_drop_clients_following_config_entries(
    hass: HomeAssistant,
    setup_site: SetupSite,
    hass_ws_client: WebSocketGenerator,
    tmp_path: Path,
    batch: int | None,
    kept: bool,
) -> None:
    """Each added subentry is a message to every such client; too many at once drop it.

    The limit is patched from 4,096 down to 800 pending messages for an import of 1,500
    (HA lets up to about 400 collect before it sends them in one frame); without the
    import's yields (one batch of everything) the client is dropped.
    """
    entry = await setup_site()
    assert await async_setup_component(hass, "config", {})
    client = await hass_ws_client(hass)

    async def messages() -> list[dict[str, Any]]:
        received = await client.receive_json()
        return received if isinstance(received, list) else [received]

    # As the frontend does: several messages may go out in one frame.
    await client.send_json_auto_id(
        {"type": "supported_features", "features": {"coalesce_messages": 1}}
    )
    assert (await messages())[0]["success"]
    await client.send_json_auto_id({"type": "config_entries/subscribe"})
    started = [message["type"] for message in await messages()]
    if started == ["result"]:
        started += [message["type"] for message in await messages()]
    assert started == ["result", "event"]  # the answer, then the current entries
    write_bins(hass, tmp_path / "bins.geojson", 1500)

    async def follow() -> int:
        """Read as a browser does, while the import runs; the updates seen until dropped."""
        updates = 0
        while updates < 1500:
            received = await client.receive()
            if received.type is not WSMsgType.TEXT:
                return updates  # closed by Home Assistant
            frames = json.loads(received.data)
            for message in frames if isinstance(frames, list) else [frames]:
                updates += sum(1 for change in message["event"] if change["type"] == "updated")
        return updates

    reader = asyncio.create_task(follow())
    with (
        patch("homeassistant.components.websocket_api.http.MAX_PENDING_MSG", 800),
        patch.object(services, "IMPORT_BATCH", batch or services.IMPORT_BATCH),
    ):
        await hass.services.async_call(
            DOMAIN,
            "import_assets",
            {"config_entry_id": entry.entry_id, "path": "bins.geojson"},
            blocking=True,
            return_response=True,
        )
        await hass.async_block_till_done()
        updates = await reader
    if kept:
        assert updates == 1500
        await client.send_json_auto_id({"type": "ping"})
        assert [message["type"] for message in await messages()] == ["pong"]
    else:
        assert updates < 800
    assert len(entry.subentries) == 1504


async def test_changed_options_apply_in_place(hass: HomeAssistant, setup_site: SetupSite) -> None:
    """A lower full threshold makes a 75 % container due at once; nothing reloads."""
    entry = await setup_site()
    runtime = entry.runtime_data
    async_fire_mqtt_message(hass, "v3/city-bins@ttn/devices/bin-0042/up", ttn(distance=400))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.bin_0042_fill_level").state == "75.0"
    assert hass.states.get("sensor.stadtpark_containers_due").state == "0"
    before = snapshot(hass)
    events = async_capture_events(hass, EVENT_STATE_CHANGED)

    result = await hass.config_entries.options.async_init(entry.entry_id)
    depot = {"latitude": 53.69, "longitude": 10.01, "radius": 0}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"full_threshold": 70, "due_horizon_h": 12, "depot": depot}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    assert entry.runtime_data is runtime
    untouched(hass, before, events)  # the containers' own entities show the same
    assert hass.states.get("sensor.stadtpark_containers_due").state == "1"
    assert runtime.site.settings.depot_latitude == 53.69


async def test_changed_topic_roots_rebuild_the_site(
    hass: HomeAssistant, setup_site: SetupSite
) -> None:
    """Every subscription and decoder depends on them: this is the change that reloads."""
    entry = await setup_site()
    runtime = entry.runtime_data
    hass.config_entries.async_update_entry(entry, data={**entry.data, "ttn_topic": "v3/+/up"})
    await hass.async_block_till_done()
    assert entry.runtime_data is not runtime


@pytest.mark.parametrize(("batch", "kept"), [(None, True), (100_000, False)])
async def test_a_large_site_sets_up_without_dropping_clients_following_states(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    hass_ws_client: WebSocketGenerator,
    batch: int | None,
    kept: bool,
) -> None:
    """Each entity a set-up adds is a message to every client following states.

    A site reloaded for an asset that cannot change in place adds all its entities at once.
    The limit is patched from 4,096 down to 800 pending messages for a site of 1,200
    containers; without the set-up's yields (one slice of everything) the client is dropped.
    """
    site = MockConfigEntry(
        domain=DOMAIN,
        title="Stadtpark",
        data={"name": "Stadtpark", **TOPIC_DEFAULTS_DATA},
        subentries_data=[container(f"Bin {n:04d}", "ttn", f"bin-{n:04d}") for n in range(1200)],
    )
    # Everything that registers HTTP views, before the server runs.
    for domain in (DOMAIN, "calendar", "todo"):
        assert await async_setup_component(hass, domain, {})
    client = await hass_ws_client(hass)
    site.add_to_hass(hass)
    await client.send_json_auto_id({"type": "subscribe_entities"})
    assert (await client.receive_json())["success"]
    assert (await client.receive_json())["event"] == {"a": {}}  # nothing there yet

    async def follow() -> int:
        """Read as a browser does while the site sets up; the entities seen until dropped."""
        added: set[str] = set()
        while len(added) < 1200:
            received = await client.receive()
            if received.type is not WSMsgType.TEXT:
                return len(added)  # closed by Home Assistant
            added |= {
                entity_id
                for entity_id in json.loads(received.data)["event"].get("a", {})
                if entity_id.endswith("_fill_level")
            }
        return len(added)

    reader = asyncio.create_task(follow())
    with (
        patch("homeassistant.components.websocket_api.http.MAX_PENDING_MSG", 800),
        patch.object(budget, "SETUP_BATCH", batch or budget.SETUP_BATCH),
    ):
        assert await hass.config_entries.async_setup(site.entry_id)
        await hass.async_block_till_done()
        seen = await reader
    assert len(hass.states.async_entity_ids("sensor")) >= 1200
    if kept:
        assert seen == 1200
        await client.send_json_auto_id({"type": "ping"})
        assert (await client.receive_json())["type"] == "pong"
    else:
        assert seen < 800
