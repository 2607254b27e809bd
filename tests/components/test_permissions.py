"""Who may do what: every service and entity action against every role, refusals translated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from homeassistant.auth.const import GROUP_ID_USER
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, Unauthorized
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.const import DOMAIN, TOPIC_DEFAULTS_DATA
from custom_components.city_ops.permissions import NotPermitted

from .conftest import locker_bank, mast
from .lockers import bank_device, commands, report

COMPONENT = Path(__file__).parents[2] / "custom_components/city_ops"
STRINGS = json.loads((COMPONENT / "strings.json").read_text("utf-8"))
GERMAN = json.loads((COMPONENT / "translations/de.json").read_text("utf-8"))
LOCK_1 = "lock.locker_north_compartment_1"
LIGHT = "light.m1"
MOTION = "binary_sensor.m1_motion"

# (domain, service, data, what it needs: book / operate / administer)
CALLS: list[tuple[str, str, dict[str, Any], str]] = [
    (DOMAIN, "reserve", {"compartment": 2}, "book"),
    (DOMAIN, "cancel", {"compartment": 1}, "book"),
    (DOMAIN, "extend", {"compartment": 1, "minutes": 10}, "book"),
    (DOMAIN, "release_code", {"code": "000000"}, "operate"),
    (DOMAIN, "boost", {"entity_id": LIGHT}, "operate"),
    # As the motion blueprint calls it: the mast by its motion sensor.
    (DOMAIN, "boost", {"entity_id": MOTION, "when_dark": True, "follow_motion": True}, "operate"),
    ("light", "turn_on", {"entity_id": LIGHT}, "operate"),
    ("light", "turn_off", {"entity_id": LIGHT}, "operate"),
    ("lock", "lock", {"entity_id": LOCK_1}, "operate"),
    ("lock", "unlock", {"entity_id": LOCK_1}, "administer"),
    (DOMAIN, "mark_returned", {"compartment": 1}, "administer"),
    (DOMAIN, "set_out_of_service", {"compartment": 3}, "administer"),
    (DOMAIN, "open_for_maintenance", {"compartment": 3}, "administer"),
    (DOMAIN, "import_assets", {"path": "in.geojson"}, "administer"),
    (DOMAIN, "export_assets", {"path": "out.geojson"}, "administer"),
]
ALLOWED = {
    "admin": {"book", "operate", "administer"},
    "operator": {"book", "operate"},
    "booking": {"book"},
    "read_only": set(),
}
REFUSALS = ("permission_read_only", "permission_admin_only", "permission_booking_only")


def refusal(role: str, needs: str) -> str:
    """The reason a role is given for a call it may not make."""
    if role == "read_only":
        return "permission_read_only"
    return "permission_admin_only" if needs == "administer" else "permission_booking_only"


@pytest.fixture
async def users(hass: HomeAssistant, hass_admin_user: MockUser, hass_read_only_user: MockUser):
    """One user per role; the booking account is a plain user named in the site's options."""
    group = await hass.auth.async_get_group(GROUP_ID_USER)
    return {
        "admin": hass_admin_user,
        "operator": MockUser(name="Operator", groups=[group]).add_to_hass(hass),
        "booking": MockUser(name="Booking portal", groups=[group]).add_to_hass(hass),
        "read_only": hass_read_only_user,
    }


@pytest.fixture
async def site(
    hass: HomeAssistant, mqtt_mock: MqttMockHAClient, users: dict[str, MockUser], tmp_path: Path
) -> dict[str, str]:
    """A site with a stocked bank (compartment 1 on loan) and a mast; the bank's device id."""
    hass.config.config_dir = str(tmp_path)
    (tmp_path / "in.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Stadtpark",
        data={"name": "Stadtpark", **TOPIC_DEFAULTS_DATA},
        options={"booking_users": [users["booking"].id]},
        subentries_data=[
            locker_bank(
                "Locker North",
                "locker-north",
                ("Walker", "walker"),
                ("Walker", "walker"),
                ("Hand cart", "hand_cart"),
            ),
            mast("M1", "mast-1"),
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    for number in (1, 2, 3):
        report(hass, "locker-north", number, door="closed", locked=True, item_present=True)
    async_fire_mqtt_message(hass, "zigbee2mqtt/mast-1", '{"occupancy": true}')  # its PIR
    await hass.async_block_till_done()
    assert hass.states.get(MOTION) is not None
    device_id = bank_device(hass, entry.entry_id, "Locker North")
    booking = await hass.services.async_call(
        DOMAIN,
        "reserve",
        {"device_id": device_id, "compartment": 1},
        blocking=True,
        return_response=True,
    )
    assert booking is not None
    return {"device_id": device_id, "entry_id": entry.entry_id}


def _data(domain: str, service: str, data: dict[str, Any], site: dict[str, str]) -> dict[str, Any]:
    if domain != DOMAIN or service == "boost":
        return dict(data)
    if service.endswith("_assets"):
        return {"config_entry_id": site["entry_id"], **data}
    return {"device_id": site["device_id"], **data}


@pytest.mark.parametrize("role", ["admin", "operator", "booking", "read_only"])
@pytest.mark.parametrize(("domain", "service", "data", "needs"), CALLS)
async def test_every_role_against_every_call(
    hass: HomeAssistant,
    mqtt_mock: MqttMockHAClient,
    users: dict[str, MockUser],
    site: dict[str, str],
    role: str,
    domain: str,
    service: str,
    data: dict[str, Any],
    needs: str,
) -> None:
    """Allowed roles get past the check; the others are refused before anything is sent."""
    mqtt_mock.async_publish.reset_mock()
    states_before = {state.entity_id: state.state for state in hass.states.async_all()}
    context = Context(user_id=users[role].id)
    call_data = _data(domain, service, data, site)
    outcome: Exception | None = None
    try:
        await hass.services.async_call(
            domain,
            service,
            call_data,
            blocking=True,
            context=context,
            return_response=service in ("reserve", "release_code"),
        )
    except HomeAssistantError as err:
        outcome = err
    await hass.async_block_till_done()
    if needs in ALLOWED[role]:
        # Past the permission check; the lending rules may still say no (a wrong code).
        assert not isinstance(outcome, Unauthorized), (role, service, outcome)
        if outcome is not None:
            assert getattr(outcome, "translation_domain", None) == DOMAIN, outcome
        return
    assert isinstance(outcome, Unauthorized), (role, service, outcome)
    if isinstance(outcome, NotPermitted):
        key = refusal(role, needs)
        assert (outcome.translation_domain, outcome.translation_key) == (DOMAIN, key)
        assert str(outcome) == STRINGS["exceptions"][key]["message"].rstrip(".")
    else:
        # Home Assistant's own entity check turns read-only users away from entity actions
        # before ours runs.
        assert (role, domain) in {("read_only", "light"), ("read_only", "lock")}, outcome
    assert commands(mqtt_mock) == []
    assert not [c for c in mqtt_mock.async_publish.call_args_list if "mast-1" in c.args[0]]
    after = {state.entity_id: state.state for state in hass.states.async_all()}
    assert after == states_before
    assert not (Path(hass.config.config_dir) / "out.geojson").exists()


def test_refusals_are_translated() -> None:
    """Every permission refusal reads in English and German."""
    for key in REFUSALS:
        assert STRINGS["exceptions"][key]["message"]
        assert GERMAN["exceptions"][key]["message"] != STRINGS["exceptions"][key]["message"]
    options = STRINGS["options"]["step"]["init"]
    assert "booking_users" in options["data"]
    assert "booking_users" in GERMAN["options"]["step"]["init"]["data"]


async def test_a_user_removed_since_is_refused(
    hass: HomeAssistant, users: dict[str, MockUser], site: dict[str, str]
) -> None:
    """A token of a user that no longer exists opens nothing."""
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "release_code",
            {"device_id": site["device_id"], "code": "000000"},
            blocking=True,
            context=Context(user_id="gone"),
        )


async def test_states_and_calendar_never_show_who_booked(
    hass: HomeAssistant, site: dict[str, str]
) -> None:
    """Borrower and reservation id stay in storage and the reserve response."""
    response = await hass.services.async_call(
        DOMAIN,
        "reserve",
        {"device_id": site["device_id"], "compartment": 2, "borrower": "portal-4711"},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    shown = repr([state.as_dict() for state in hass.states.async_all()])
    assert "portal-4711" not in shown
    assert str(response["reservation_id"]) not in shown
