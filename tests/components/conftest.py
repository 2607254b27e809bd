"""Fixtures for HA-level tests: MQTT mocked by phcc, a site with containers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
import json
from typing import Any
from unittest.mock import PropertyMock, patch

from homeassistant.components.mqtt.util import EnsureJobAfterCooldown
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigSubentry,
    ConfigSubentryData,
)
from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient, MqttMockPahoClient

from custom_components.city_ops.const import DOMAIN, TOPIC_DEFAULTS_DATA


class SubscribeAtOnce(EnsureJobAfterCooldown):
    """MQTT's batching of (un)subscriptions, run on the next loop turn instead of a timer."""

    @callback
    def async_schedule(self) -> None:
        """Run the batch on the next loop turn, or once the running one is done."""
        if self._task is not None:
            self._task.add_done_callback(lambda _: self.async_schedule())
            return
        asyncio.get_running_loop().call_soon(self.async_execute)


@pytest.fixture(autouse=True)
def broker_acknowledges_at_once() -> Iterator[None]:
    """Let the mocked broker acknowledge subscriptions without waiting for a timer.

    A site reports loaded only after the broker's SUBACKs. MQTT sends subscriptions in batches
    behind a cooldown timer, and under the freezer fixture's clock (seconds since 1970, where
    asyncio's clock resolution vanishes) even a timer due now never fires: the SUBSCRIBE would
    never leave. HA marks this cooldown as the one to replace in tests.
    """
    with patch("homeassistant.components.mqtt.client.EnsureJobAfterCooldown", SubscribeAtOnce):
        yield


BIN_42 = {
    "name": "Bin 0042",
    "latitude": 53.7001,
    "longitude": 10.0002,
    "waste_kind": "residual",
    "volume_l": 1100,
    "depth_mm": 1200,
    "sensor_offset_mm": 100,
    "report_interval_s": 3600,
    "source_kind": "ttn",
    "device": "bin-0042",
    "extra": {},
}


def container(name: str, source_kind: str, device: str, **params: Any) -> ConfigSubentryData:
    """Subentry data of a container."""
    data = {**BIN_42, "name": name, "source_kind": source_kind, "device": device, **params}
    return ConfigSubentryData(
        data=data,
        subentry_type="container",
        title=name,
        unique_id=f"{source_kind}:{device}",
    )


@pytest.fixture
def site_entry() -> MockConfigEntry:
    """A site with one container per source kind."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Stadtpark",
        data={"name": "Stadtpark", **TOPIC_DEFAULTS_DATA},
        options={"full_threshold": 80, "due_horizon_h": 24},
        subentries_data=[
            container("Bin 0042", "ttn", "bin-0042"),
            container("Glass 7", "chirpstack", "a84041000181c0de", waste_kind="glass"),
            container("Tuya 1", "zigbee2mqtt", "tuya level 1"),
            container("Native 1", "native", "bin-n1"),
        ],
    )


@pytest.fixture
def every_entity_enabled() -> Iterator[None]:
    """Create the entities that are disabled by default enabled, for tests of what they show."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


type SetupSite = Callable[[], Awaitable[MockConfigEntry]]


def _setup_function(hass: HomeAssistant, entry: MockConfigEntry) -> SetupSite:
    """A function that sets the site up when a test is ready for it."""

    async def setup() -> MockConfigEntry:
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        return entry

    return setup


@pytest.fixture
async def setup_site(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, site_entry: MockConfigEntry
) -> SetupSite:
    """Return a function that sets up the site on the mocked MQTT."""

    return _setup_function(hass, site_entry)


def mast(
    name: str,
    device: str,
    *neighbours: str,
    source_kind: str = "zigbee2mqtt",
    **params: Any,
) -> ConfigSubentryData:
    """Subentry data of a lighting mast, shaped as the mast flow stores it."""
    number = int("".join(char for char in name if char.isdigit()) or 0)
    data = {
        "name": name,
        "latitude": 53.7000 + number / 10_000,
        "longitude": 10.0000 + number / 10_000,
        "source_kind": source_kind,
        "device": device,
        "path": "Hauptweg",
        "rated_power_w": 40,
        "neighbours": sorted(neighbours),
        "motion_source": None,
        "lux_source": None,
        "base_level": None,
        "boost_level": None,
        "hold_s": None,
        **params,
        "extra": {},
    }
    return ConfigSubentryData(
        data=data, subentry_type="mast", title=name, unique_id=f"{source_kind}:{device}"
    )


@pytest.fixture
def lighting_site() -> MockConfigEntry:
    """Masts M1..M6 in a chain ("mast-1".."mast-6"); M7 alone, its PIR a separate device."""
    chain = [
        mast(f"M{number}", f"mast-{number}", *([f"M{number - 1}"] if number > 1 else []))
        for number in range(1, 7)
    ]
    return MockConfigEntry(
        domain=DOMAIN,
        title="Stadtpark",
        data={"name": "Stadtpark", **TOPIC_DEFAULTS_DATA},
        options={"full_threshold": 80, "due_horizon_h": 24},
        subentries_data=[
            *chain,
            mast(
                "M7",
                "mast-7",
                path="Pavillon",
                motion_source={"kind": "zigbee2mqtt", "device": "pir-7"},
            ),
        ],
    )


@pytest.fixture
async def setup_lighting(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, lighting_site: MockConfigEntry
) -> SetupSite:
    """Return a function that sets up the lighting site on the mocked MQTT."""
    return _setup_function(hass, lighting_site)


def locker_bank(
    name: str, device: str, *items: tuple[str, str], **params: Any
) -> ConfigSubentryData:
    """Subentry data of a locker bank; `items` are (item, item_type) for compartments 1, 2, ..."""
    data = {
        "name": name,
        "latitude": 53.7010,
        "longitude": 10.0010,
        "source_kind": "native",
        "device": device,
        "compartments": [
            {"number": number, "item": item, "item_type": item_type}
            for number, (item, item_type) in enumerate(items, start=1)
        ],
        "pickup_window_min": 120,
        "loan_period_min": 240,
        **params,
        "extra": {},
    }
    return ConfigSubentryData(
        data=data,
        subentry_type="locker_bank",
        title=name,
        unique_id=f"{data['source_kind']}:{device}",
    )


@pytest.fixture
def locker_site() -> MockConfigEntry:
    """Banks "Locker North" (walkers in 1-2, a hand cart in 3) and "Locker Lake" (a walker)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Stadtpark",
        data={"name": "Stadtpark", **TOPIC_DEFAULTS_DATA},
        options={"full_threshold": 80, "due_horizon_h": 24},
        subentries_data=[
            locker_bank(
                "Locker North",
                "locker-north",
                ("Walker", "walker"),
                ("Walker", "walker"),
                ("Hand cart", "hand_cart"),
            ),
            locker_bank("Locker Lake", "locker-lake", ("Walker", "walker")),
        ],
    )


@pytest.fixture
async def setup_lockers(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, locker_site: MockConfigEntry
) -> SetupSite:
    """Return a function that sets up the locker site on the mocked MQTT."""

    return _setup_function(hass, locker_site)


# -- helpers for the tests of flows and of assets changed in place ------------------------------


def subentry(entry: MockConfigEntry, title: str) -> ConfigSubentry:
    """A site's asset subentry by its title."""
    return next(sub for sub in entry.subentries.values() if sub.title == title)


async def start_add(hass: HomeAssistant, entry: MockConfigEntry, kind: str) -> dict[str, Any]:
    """Open the form that adds an asset of a kind ("mast", "locker_bank", ...) to a site."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, kind), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return dict(result)


async def start_reconfigure(
    hass: HomeAssistant, entry: MockConfigEntry, kind: str, title: str
) -> dict[str, Any]:
    """Open the form that changes an asset of a site."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, kind),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry(entry, title).subentry_id},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    return dict(result)


def untouched(hass: HomeAssistant, before: dict[str, State], events: list[Event[Any]]) -> None:
    """The other assets' entities were never written, let alone unavailable."""
    for entity_id, state in before.items():
        assert hass.states.get(entity_id) is state, entity_id
    assert not [e for e in events if e.data["entity_id"] in before]


def unsubscribed(paho: MqttMockPahoClient) -> set[str]:
    """Topics given up on the broker since the last reset."""
    topics: set[str] = set()
    for call in paho.unsubscribe.call_args_list:
        wanted = call.args[0]
        topics.update([wanted] if isinstance(wanted, str) else wanted)
    return topics


def sent_to(mqtt_mock: MqttMockHAClient, device: str) -> list[dict[str, Any]]:
    """What a Zigbee2MQTT luminaire was told since the last reset."""
    return [
        json.loads(call.args[1])
        for call in mqtt_mock.async_publish.call_args_list
        if call.args[0] == f"zigbee2mqtt/{device}/set"
    ]
