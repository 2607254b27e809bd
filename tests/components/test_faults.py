"""Faults and floods inside Home Assistant: bounded logs, undeliverable commands, stale entries."""

from __future__ import annotations

import json
import logging

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.const import DOMAIN
from custom_components.city_ops.diagnostics import async_get_config_entry_diagnostics
from custom_components.city_ops.throttled_log import ThrottledLog

from .conftest import SetupSite


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
