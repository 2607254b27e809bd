"""A crew works the collection route: tick a stop (emptied by hand), skip one with a reason."""

from __future__ import annotations

from datetime import timedelta
import json
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.auth.const import GROUP_ID_USER
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_capture_events,
    async_fire_mqtt_message,
    async_fire_time_changed,
)

from custom_components.city_ops.const import EVENT_CONTAINER_EMPTIED

from .conftest import SetupSite
from .test_containers import TTN_TOPIC, entity_id, entity_ids, state, ttn

# What these tests check is shown by entities that are disabled by default, too.
pytestmark = pytest.mark.usefixtures("every_entity_enabled")


async def _refresh(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    await hass.async_block_till_done()
    freezer.tick(timedelta(seconds=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def items(hass: HomeAssistant, route: str, *status: str) -> list[dict[str, Any]]:
    data: dict[str, Any] = {"entity_id": route}
    if status:
        data["status"] = list(status)
    response = await hass.services.async_call(
        "todo", "get_items", data, blocking=True, return_response=True
    )
    return list(response[route]["items"])  # type: ignore[index,call-overload]


async def update(
    hass: HomeAssistant, route: str, item: str, context: Context | None = None, **changes: Any
) -> None:
    await hass.services.async_call(
        "todo",
        "update_item",
        {"entity_id": route, "item": item, **changes},
        blocking=True,
        context=context,
    )


@pytest.fixture
async def due_site(
    hass: HomeAssistant, setup_site: SetupSite, freezer: FrozenDateTimeFactory
) -> tuple[MockConfigEntry, str]:
    """The site with two due containers (Bin 0042 at 95 %, Tuya 1 at 85 %)."""
    await hass.config.async_set_time_zone("Europe/Berlin")
    freezer.move_to("2026-12-03 08:00:00+00:00")
    entry = await setup_site()
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=160))
    async_fire_mqtt_message(
        hass, "zigbee2mqtt/tuya level 1", json.dumps({"liquid_level_percent": 85})
    )
    await _refresh(hass, freezer)
    route = entity_id(hass, "Stadtpark", "collection_route")
    assert hass.states.get(route).state == "2"
    return entry, route


async def test_route_lines_are_translated_and_the_tour_length_is_shown(
    hass: HomeAssistant, due_site: tuple[MockConfigEntry, str], freezer: FrozenDateTimeFactory
) -> None:
    _, route = due_site
    lines = {item["summary"]: item["description"] for item in await items(hass, route)}
    assert lines["Bin 0042"].endswith("· residual waste · 95 %")
    assert lines["Bin 0042"].startswith("Stop ")
    assert hass.states.get(route).attributes["length_m"] > 0
    hass.config.language = "de"
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=1))
    await _refresh(hass, freezer)
    lines = {item["summary"]: item["description"] for item in await items(hass, route)}
    assert lines["Tuya 1"].endswith("· Restmüll · 85 %")
    assert lines["Tuya 1"].startswith("Halt ")


async def test_ticking_a_stop_records_who_emptied_it_and_takes_it_off_the_tour(
    hass: HomeAssistant,
    hass_admin_user: MockUser,
    due_site: tuple[MockConfigEntry, str],
    freezer: FrozenDateTimeFactory,
) -> None:
    entry, route = due_site
    emptied = async_capture_events(hass, EVENT_CONTAINER_EMPTIED)
    uid = next(item["uid"] for item in await items(hass, route) if item["summary"] == "Bin 0042")

    await update(hass, route, uid, Context(user_id=hass_admin_user.id), status="completed")
    await _refresh(hass, freezer)

    assert hass.states.get(route).state == "1"
    (done,) = await items(hass, route, "completed")
    assert done["summary"] == "Bin 0042"
    assert done["description"] == f"Emptied by {hass_admin_user.name} 09:00"  # Berlin time
    emptied_at = dt_util.parse_datetime(state(hass, "Bin 0042", "last_emptied"))
    assert emptied_at is not None
    assert abs((emptied_at - dt_util.utcnow()).total_seconds()) < 5
    (event,) = emptied
    assert event.data["by_hand"] is True
    assert event.data["before"] == 95.0
    assert hass.states.get(entity_id(hass, "Stadtpark", "containers_due")).state == "1"
    # Ticking it again changes nothing; unticking is refused.
    await update(hass, route, uid, status="completed")
    with pytest.raises(ServiceValidationError) as refused:
        await update(hass, route, uid, status="needs_action")
    assert refused.value.translation_key == "stop_already_done"
    # The sensor's next report (emptied) does not bring it back.
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=1250))
    await _refresh(hass, freezer)
    assert [item["summary"] for item in await items(hass, route, "completed")] == ["Bin 0042"]
    # Survives a reload.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await _refresh(hass, freezer)
    assert [item["summary"] for item in await items(hass, route, "completed")] == ["Bin 0042"]


async def test_a_skipped_stop_leaves_this_tour_and_comes_back_on_the_next(
    hass: HomeAssistant, due_site: tuple[MockConfigEntry, str], freezer: FrozenDateTimeFactory
) -> None:
    _, route = due_site
    stop = next(item for item in await items(hass, route) if item["summary"] == "Tuya 1")

    with pytest.raises(ServiceValidationError) as refused:
        await update(hass, route, stop["uid"], description=stop["description"])
    assert refused.value.translation_key == "skip_needs_reason"
    await update(
        hass, route, stop["uid"], description=f"{stop['description']}\nBlocked by a parked car"
    )
    await _refresh(hass, freezer)

    assert [item["summary"] for item in await items(hass, route, "needs_action")] == ["Bin 0042"]
    (skipped,) = await items(hass, route, "completed")
    assert skipped["description"] == "Skipped 09:00: Blocked by a parked car"
    assert hass.states.get(entity_id(hass, "Stadtpark", "containers_due")).state == "1"

    # The next day is the next tour: the stop is due again, and yesterday's list is gone.
    freezer.move_to("2026-12-04 05:00:00+00:00")
    async_fire_time_changed(hass)
    await _refresh(hass, freezer)
    assert sorted(item["summary"] for item in await items(hass, route)) == ["Bin 0042", "Tuya 1"]
    assert await items(hass, route, "completed") == []


async def test_alarms_are_flagged_in_the_route(
    hass: HomeAssistant, due_site: tuple[MockConfigEntry, str], freezer: FrozenDateTimeFactory
) -> None:
    _, route = due_site
    async_fire_mqtt_message(hass, TTN_TOPIC, ttn(distance=160, temperature=75, position="tilt"))
    await _refresh(hass, freezer)
    summaries = [item["summary"] for item in await items(hass, route)]
    assert "Bin 0042 · FIRE ALARM · TILTED" in summaries


async def test_a_container_that_is_not_due_cannot_be_ticked(
    hass: HomeAssistant, due_site: tuple[MockConfigEntry, str]
) -> None:
    entry, route = due_site
    native = next(
        asset_id
        for asset_id, container in entry.runtime_data.site.containers.items()
        if container.spec.name == "Native 1"
    )
    with pytest.raises(ServiceValidationError):
        await update(hass, route, native, status="completed")
    assert entry.runtime_data.waste.route.done == {}
    assert entity_ids(hass, "Native 1", "last_emptied") == []  # never emptied


async def test_a_booking_account_cannot_work_the_route(
    hass: HomeAssistant, hass_read_only_user: MockUser, due_site: tuple[MockConfigEntry, str]
) -> None:
    entry, route = due_site
    group = await hass.auth.async_get_group(GROUP_ID_USER)
    portal = MockUser(name="Booking portal", groups=[group]).add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, "booking_users": [portal.id]}
    )
    await hass.async_block_till_done()
    uid = (await items(hass, route))[0]["uid"]
    for user in (portal, hass_read_only_user):
        with pytest.raises(Unauthorized):
            await update(hass, route, uid, Context(user_id=user.id), status="completed")
    assert entry.runtime_data.waste.route.done == {}
