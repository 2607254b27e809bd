"""The console's map markers: each asset's state as a picture, served by the integration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.city_ops.console import (
    MARKER_COLOURS,
    container_marker,
    marker_svg,
    mast_marker,
)
from custom_components.city_ops.const import DOMAIN
from custom_components.city_ops.model.container import Container, ContainerSpec, FillState
from custom_components.city_ops.model.lighting import FaultKind, Mast, MastSpec

from .conftest import SetupSite
from .test_containers import TTN_TOPIC, entity_id, ttn

NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)


def bin_with(**status: object) -> Container:
    container = Container(ContainerSpec("Bin", 53.7, 10.0))
    for key, value in status.items():
        setattr(container.status, key, value)
    return container


@pytest.mark.parametrize(
    ("status", "url"),
    [
        ({"fill_level": 91.6, "fill_state": FillState.FULL}, "/city_ops/marker/full/92.svg"),
        ({"fill_level": 75.0, "fill_state": FillState.ALMOST_FULL}, "almost_full/75.svg"),
        ({"fill_level": 40.2, "fill_state": FillState.OK}, "/city_ops/marker/ok/40.svg"),
        ({"fill_level": 3.0, "fill_state": FillState.EMPTY}, "/city_ops/marker/empty/3.svg"),
        # An alarm outranks the level and a silent sensor; silence outranks the last level.
        ({"fill_level": 20.0, "fire_alarm": True}, "/city_ops/marker/alarm/-.svg"),
        ({"fill_level": 20.0, "tilted": True, "online": False}, "/city_ops/marker/alarm/-.svg"),
        ({"fill_level": 88.0, "fill_state": FillState.FULL, "online": False}, "offline/-.svg"),
        ({}, "/city_ops/marker/offline/-.svg"),  # never reported
    ],
)
def test_a_container_marker_says_alarm_silence_or_how_full(
    status: dict[str, object], url: str
) -> None:
    assert container_marker(bin_with(**status)).endswith(url)


def test_a_mast_marker_says_offline_fault_dark_boosted_or_base() -> None:
    mast = Mast(MastSpec("M", 53.7, 10.0))
    mast.status.on, mast.status.brightness = True, 76
    assert mast_marker(mast, NOW) == "/city_ops/marker/base/30.svg"
    mast.status.boost_until = NOW + timedelta(minutes=2)
    mast.status.brightness = 254
    assert mast_marker(mast, NOW) == "/city_ops/marker/boosted/100.svg"
    assert mast_marker(mast, NOW + timedelta(minutes=3)) == "/city_ops/marker/base/100.svg"
    mast.status.on = False
    assert mast_marker(mast, NOW) == "/city_ops/marker/dark/-.svg"
    mast.status.faults[FaultKind.LAMP_FAILURE] = NOW
    assert mast_marker(mast, NOW) == "/city_ops/marker/fault/-.svg"
    mast.status.offline_since = NOW
    assert mast_marker(mast, NOW) == "/city_ops/marker/offline/-.svg"


@pytest.mark.parametrize(
    ("state", "label", "text"),
    [("full", "92", ">92<"), ("base", "100", ">100<"), ("alarm", "-", ">!<"), ("dark", "-", "><")],
)
def test_the_marker_picture_is_its_colour_and_label(state: str, label: str, text: str) -> None:
    svg = marker_svg(state, label)
    assert svg is not None
    assert svg.startswith("<svg ")
    assert f'fill="{MARKER_COLOURS[state][0]}"' in svg
    assert text in svg


@pytest.mark.parametrize(
    ("state", "label"),
    [("purple", "10"), ("full", "101"), ("full", "abc"), ("ok", "1e2"), ("ok", "0100")],
)
def test_no_picture_for_what_the_console_never_asks(state: str, label: str) -> None:
    assert marker_svg(state, label) is None


async def test_the_markers_are_served_without_login_and_refused_when_unknown(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> None:
    assert await async_setup_component(hass, "frontend", {})
    assert await async_setup_component(hass, DOMAIN, {})
    client = await hass_client_no_auth()
    response = await client.get("/city_ops/marker/almost_full/75.svg")
    assert response.status == 200
    assert response.content_type == "image/svg+xml"
    assert ">75<" in await response.text()
    assert "max-age" in response.headers["Cache-Control"]
    for bad in ("/city_ops/marker/almost_full/750.svg", "/city_ops/marker/x/1.svg"):
        assert (await client.get(bad)).status == 404, bad


async def test_the_fill_level_carries_the_marker_and_keeps_its_place_while_silent(
    hass: HomeAssistant, setup_site: SetupSite, freezer: FrozenDateTimeFactory
) -> None:
    await setup_site()
    fill_level = entity_id(hass, "Bin 0042", "fill_level")

    def shown() -> tuple[str, str, float]:
        state = hass.states.get(fill_level)
        assert state is not None
        return state.state, state.attributes["entity_picture"], state.attributes["latitude"]

    assert shown() == ("unknown", "/city_ops/marker/offline/-.svg", pytest.approx(53.7001))
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=700, battery=17))
    await hass.async_block_till_done()
    assert shown() == ("50.0", "/city_ops/marker/ok/50.svg", pytest.approx(53.7001))
    # The console's low-battery list reads the battery here (its own entity is off by default).
    level = hass.states.get(fill_level)
    assert level is not None
    assert level.attributes["battery"] == 17
    # A tilt changes no fill level, yet the marker turns to the alarm.
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(position="tilt"))
    await hass.async_block_till_done()
    assert shown()[1] == "/city_ops/marker/alarm/-.svg"
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=250, position="normal"))
    await hass.async_block_till_done()
    assert shown()[1] == "/city_ops/marker/full/88.svg"
    # Silent for three report intervals: unavailable, grey, still where it stands.
    freezer.tick(timedelta(hours=2, minutes=59))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    for _ in range(3):
        freezer.tick(timedelta(minutes=1))
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    assert shown() == (STATE_UNAVAILABLE, "/city_ops/marker/offline/-.svg", pytest.approx(53.7001))


async def test_an_offline_mast_stays_on_the_map_in_grey(
    hass: HomeAssistant, setup_lighting: SetupSite
) -> None:
    await setup_lighting()
    light = entity_id(hass, "M2", "light")
    async_fire_mqtt_message(hass, "zigbee2mqtt/mast-2", '{"state": "ON", "brightness": 76}')
    await hass.async_block_till_done()
    state = hass.states.get(light)
    assert state is not None
    assert state.attributes["entity_picture"].startswith("/city_ops/marker/")
    assert state.attributes["entity_picture"] != "/city_ops/marker/offline/-.svg"
    async_fire_mqtt_message(hass, "zigbee2mqtt/mast-2/availability", '{"state":"offline"}')
    await hass.async_block_till_done()
    state = hass.states.get(light)
    assert state is not None
    assert state.state == STATE_UNAVAILABLE
    assert state.attributes["entity_picture"] == "/city_ops/marker/offline/-.svg"
    assert state.attributes["latitude"] == pytest.approx(53.7002)
    assert state.attributes["path"] == "Hauptweg"
