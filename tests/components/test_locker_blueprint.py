"""The locker alerts blueprint, run by the real automation integration.

The integration's locker banks are not set up here: the banks are devices of a site in the
registries, the events are fired as the integration fires them (docs/lockers-contract.md), and
the compartments' doors and loan states are set as their entities would report them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import persistent_notification
from homeassistant.components.blueprint.models import DomainBlueprints
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.yaml import load_yaml
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)

from custom_components.city_ops.const import DOMAIN

BLUEPRINTS = Path(__file__).resolve().parents[2] / "blueprints"
DEMO_AUTOMATIONS = Path(__file__).resolve().parents[2] / "config" / "automations.yaml"
BLUEPRINT = "city_ops/locker_alerts.yaml"
OVERDUE = "city_ops_locker_overdue"
KEYPAD_LOCKED = "city_ops_locker_keypad_locked"
NORTH_ITEMS = {1: "Walker", 2: "Walker", 3: "Hand cart"}
LAKE_ITEMS = {1: "Folding wheelchair"}
NOTIFY = [
    {
        "action": "test.notify",
        "data": {
            "alert": "{{ alert }}",
            "title": "{{ title }}",
            "message": "{{ message }}",
            "bank": "{{ bank }}",
            "compartment": "{{ compartment }}",
            "item": "{{ item }}",
            "item_type": "{{ item_type }}",
            "borrower": "{{ borrower }}",
            "loan_until": "{{ loan_until }}",
            "open_minutes": "{{ open_minutes }}",
        },
    }
]


@dataclass(frozen=True, slots=True)
class Banks:
    """The two banks' device ids, keyed by bank name."""

    entry: MockConfigEntry
    device_ids: dict[str, str]


type SetupAlerts = Callable[..., Awaitable[list[ServiceCall]]]


@pytest.fixture(autouse=True)
def blueprint_folder() -> Iterator[None]:
    """Load blueprints from the repository's blueprints/ folder, as a user's config/ would."""
    with patch.object(
        DomainBlueprints,
        "blueprint_folder",
        new_callable=PropertyMock,
        side_effect=lambda: BLUEPRINTS / "automation",
    ):
        yield


def slug(name: str) -> str:
    return name.lower().replace(" ", "_")


def door(bank: str, number: int) -> str:
    return f"binary_sensor.{slug(bank)}_compartment_{number}_door"


@pytest.fixture
def banks(hass: HomeAssistant) -> Banks:
    """Two banks of a site (not set up) with their compartments' doors and loan states.

    Locker Lake's loan state sensors are missing, as if renamed away: its doors are known
    only by their names.
    """
    entry = MockConfigEntry(domain=DOMAIN, title="Stadtpark", data={"name": "Stadtpark"})
    entry.add_to_hass(hass)
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    device_ids = {}
    for bank, items in (("Locker North", NORTH_ITEMS), ("Locker Lake", LAKE_ITEMS)):
        device = devices.async_get_or_create(
            config_entry_id=entry.entry_id, identifiers={(DOMAIN, slug(bank))}, name=bank
        )
        device_ids[bank] = device.id
        for number, item in items.items():
            door_entry = entities.async_get_or_create(
                "binary_sensor",
                DOMAIN,
                f"{slug(bank)}-{number}-door",
                config_entry=entry,
                device_id=device.id,
                suggested_object_id=f"{slug(bank)}_compartment_{number}_door",
                original_device_class="door",
                translation_key="door",
            )
            hass.states.async_set(
                door_entry.entity_id,
                STATE_OFF,
                {"device_class": "door", "friendly_name": f"{bank} Compartment {number} door"},
            )
            if bank == "Locker Lake":
                continue
            loan_state = entities.async_get_or_create(
                "sensor",
                DOMAIN,
                f"{slug(bank)}-{number}-loan-state",
                config_entry=entry,
                device_id=device.id,
                suggested_object_id=f"{slug(bank)}_compartment_{number}_loan_state",
                translation_key="loan_state",
            )
            hass.states.async_set(
                loan_state.entity_id,
                "available",
                {
                    "compartment": number,
                    "item": item,
                    "item_type": slug(item),
                    "reservation_id": None,
                    "borrower": None,
                    "pickup_until": None,
                    "loan_until": None,
                },
            )
    return Banks(entry, device_ids)


@pytest.fixture
async def setup_alerts(hass: HomeAssistant, banks: Banks) -> SetupAlerts:
    """Return a function that sets up one automation from the blueprint with given inputs."""

    async def setup(**inputs: Any) -> list[ServiceCall]:
        calls = async_mock_service(hass, "test", "notify")
        assert await async_setup_component(
            hass,
            "automation",
            {
                "automation": {
                    "alias": "Lockers",
                    "use_blueprint": {
                        "path": BLUEPRINT,
                        "input": {"notify": NOTIFY, **inputs},
                    },
                }
            },
        )
        await hass.async_block_till_done()
        automation = hass.states.get("automation.lockers")
        assert automation is not None
        assert automation.state == STATE_ON
        return calls

    return setup


async def fire(hass: HomeAssistant, banks: Banks, event_type: str, bank: str, **data: Any) -> None:
    """Fire a locker event as the integration does: bank name and bank device id included."""
    hass.bus.async_fire(
        event_type,
        {
            "config_entry_id": banks.entry.entry_id,
            "bank": bank,
            "bank_device_id": banks.device_ids[bank],
            **data,
        },
    )
    await hass.async_block_till_done()


def loan(number: int, item: str, loan_until: str = "2026-11-22T15:30:00+00:00") -> dict[str, Any]:
    """The event data of an overdue loan of compartment <number>."""
    return {
        "compartment": number,
        "item": item,
        "item_type": slug(item),
        "reservation_id": f"r-{number}",
        "borrower": "resident-17",
        "loan_until": loan_until,
    }


async def set_door(hass: HomeAssistant, entity_id: str, state: str) -> None:
    """The door reports open ("on") or closed ("off"), keeping its attributes."""
    current = hass.states.get(entity_id)
    assert current is not None
    hass.states.async_set(entity_id, state, current.attributes)
    await hass.async_block_till_done()


async def wait(hass: HomeAssistant, freezer: FrozenDateTimeFactory, **delta: float) -> None:
    """Let time pass on the frozen clock and run what became due."""
    freezer.tick(timedelta(**delta))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def test_overdue_loan_notifies_once_naming_bank_compartment_and_item(
    hass: HomeAssistant, setup_alerts: SetupAlerts, banks: Banks
) -> None:
    calls = await setup_alerts()
    await fire(hass, banks, OVERDUE, "Locker North", **loan(3, "Hand cart"))
    assert len(calls) == 1
    due = dt_util.as_local(dt_util.parse_datetime("2026-11-22T15:30:00+00:00"))
    due_text = due.strftime("%Y-%m-%d %H:%M")
    assert calls[0].data == {
        "alert": "overdue",
        "title": "Loan overdue",
        "message": f"Hand cart from Locker North, compartment 3 is overdue: it was due back at "
        f"{due_text}.",
        "bank": "Locker North",
        "compartment": 3,
        "item": "Hand cart",
        "item_type": "hand_cart",
        "borrower": "resident-17",
        "loan_until": due_text,
        "open_minutes": 0,
    }


async def test_overdue_loans_of_every_bank_are_notified_without_a_bank_choice(
    hass: HomeAssistant, setup_alerts: SetupAlerts, banks: Banks
) -> None:
    calls = await setup_alerts()
    await fire(hass, banks, OVERDUE, "Locker North", **loan(1, "Walker"))
    await fire(hass, banks, OVERDUE, "Locker Lake", **loan(1, "Folding wheelchair"))
    await fire(hass, banks, OVERDUE, "Locker North", **loan(2, "Walker"))
    assert [(c.data["bank"], c.data["compartment"], c.data["item"]) for c in calls] == [
        ("Locker North", 1, "Walker"),
        ("Locker Lake", 1, "Folding wheelchair"),
        ("Locker North", 2, "Walker"),
    ]


async def test_bank_choice_leaves_out_the_other_banks(
    hass: HomeAssistant, setup_alerts: SetupAlerts, banks: Banks
) -> None:
    calls = await setup_alerts(banks=[banks.device_ids["Locker Lake"]], keypad_lockout=True)
    await fire(hass, banks, OVERDUE, "Locker North", **loan(1, "Walker"))
    await fire(hass, banks, KEYPAD_LOCKED, "Locker North")
    assert calls == []
    await fire(hass, banks, OVERDUE, "Locker Lake", **loan(1, "Folding wheelchair"))
    await fire(hass, banks, KEYPAD_LOCKED, "Locker Lake")
    assert [(c.data["alert"], c.data["bank"]) for c in calls] == [
        ("overdue", "Locker Lake"),
        ("keypad_locked", "Locker Lake"),
    ]


async def test_bank_renamed_by_the_user_is_named_as_the_user_named_it(
    hass: HomeAssistant, setup_alerts: SetupAlerts, banks: Banks
) -> None:
    calls = await setup_alerts()
    dr.async_get(hass).async_update_device(
        banks.device_ids["Locker North"], name_by_user="Lockers at the main gate"
    )
    await fire(hass, banks, OVERDUE, "Locker North", **loan(2, "Walker"))
    assert calls[0].data["bank"] == "Lockers at the main gate"
    assert (
        calls[0].data["message"].startswith("Walker from Lockers at the main gate, compartment 2")
    )


async def test_door_open_for_six_minutes_notifies_once_after_five(
    hass: HomeAssistant,
    setup_alerts: SetupAlerts,
    freezer: FrozenDateTimeFactory,
) -> None:
    calls = await setup_alerts(doors=[door("Locker North", n) for n in NORTH_ITEMS])
    await set_door(hass, door("Locker North", 3), STATE_ON)
    await wait(hass, freezer, minutes=4, seconds=59)
    assert calls == []
    await wait(hass, freezer, seconds=2)
    assert len(calls) == 1
    assert calls[0].data == {
        "alert": "door_open",
        "title": "Locker door open",
        "message": "Locker North, compartment 3 (Hand cart): the door has been open for 5 min.",
        "bank": "Locker North",
        "compartment": 3,
        "item": "Hand cart",
        "item_type": "hand_cart",
        "borrower": "",
        "loan_until": "",
        "open_minutes": 5,
    }
    await wait(hass, freezer, minutes=1)  # six minutes open
    await wait(hass, freezer, minutes=30)  # and much longer: still reported only once
    assert len(calls) == 1
    # Closed and left open again: a new opening, reported again.
    await set_door(hass, door("Locker North", 3), STATE_OFF)
    await set_door(hass, door("Locker North", 3), STATE_ON)
    await wait(hass, freezer, minutes=6)
    assert len(calls) == 2


async def test_door_closed_after_two_minutes_is_not_reported(
    hass: HomeAssistant,
    setup_alerts: SetupAlerts,
    freezer: FrozenDateTimeFactory,
) -> None:
    calls = await setup_alerts(doors=[door("Locker North", n) for n in NORTH_ITEMS])
    await set_door(hass, door("Locker North", 1), STATE_ON)
    await wait(hass, freezer, minutes=2)
    await set_door(hass, door("Locker North", 1), STATE_OFF)
    await wait(hass, freezer, minutes=10)
    assert calls == []


async def test_door_open_duration_comes_from_the_input(
    hass: HomeAssistant,
    setup_alerts: SetupAlerts,
    freezer: FrozenDateTimeFactory,
) -> None:
    calls = await setup_alerts(
        doors=[door("Locker North", 2)], door_open_for={"hours": 0, "minutes": 1, "seconds": 0}
    )
    await set_door(hass, door("Locker North", 1), STATE_ON)  # not a watched door
    await set_door(hass, door("Locker North", 2), STATE_ON)
    await wait(hass, freezer, seconds=61)
    assert [(c.data["compartment"], c.data["open_minutes"]) for c in calls] == [(2, 1)]


async def test_door_without_its_loan_state_sensor_is_named_by_its_own_name(
    hass: HomeAssistant,
    setup_alerts: SetupAlerts,
    freezer: FrozenDateTimeFactory,
) -> None:
    calls = await setup_alerts(doors=[door("Locker Lake", 1)])
    await set_door(hass, door("Locker Lake", 1), STATE_ON)
    await wait(hass, freezer, minutes=5, seconds=1)
    assert [(c.data["bank"], c.data["compartment"], c.data["message"]) for c in calls] == [
        (
            "Locker Lake",
            1,
            "Locker Lake, compartment 1 (the item): the door has been open for 5 min.",
        )
    ]


async def test_keypad_lockout_is_not_reported_by_default(
    hass: HomeAssistant, setup_alerts: SetupAlerts, banks: Banks
) -> None:
    calls = await setup_alerts()
    await fire(hass, banks, KEYPAD_LOCKED, "Locker North")
    assert calls == []


async def test_keypad_lockout_is_reported_when_switched_on(
    hass: HomeAssistant, setup_alerts: SetupAlerts, banks: Banks
) -> None:
    calls = await setup_alerts(keypad_lockout=True)
    await fire(hass, banks, KEYPAD_LOCKED, "Locker North")
    assert len(calls) == 1
    assert calls[0].data == {
        "alert": "keypad_locked",
        "title": "Locker keypad locked",
        "message": "The keypad of Locker North is locked after repeated wrong entries.",
        "bank": "Locker North",
        "compartment": "",
        "item": "",
        "item_type": "",
        "borrower": "",
        "loan_until": "",
        "open_minutes": 0,
    }


async def test_turned_off_automation_does_not_notify(
    hass: HomeAssistant,
    setup_alerts: SetupAlerts,
    banks: Banks,
    freezer: FrozenDateTimeFactory,
) -> None:
    calls = await setup_alerts(doors=[door("Locker North", 1)], keypad_lockout=True)
    await hass.services.async_call(
        "automation", "turn_off", {"entity_id": "automation.lockers"}, blocking=True
    )
    await fire(hass, banks, OVERDUE, "Locker North", **loan(1, "Walker"))
    await fire(hass, banks, KEYPAD_LOCKED, "Locker North")
    await set_door(hass, door("Locker North", 1), STATE_ON)
    await wait(hass, freezer, minutes=10)
    assert calls == []


async def test_demo_automation_puts_alerts_in_the_sidebar(
    hass: HomeAssistant, banks: Banks, freezer: FrozenDateTimeFactory
) -> None:
    """config/automations.yaml's locker alerts, as the demo runs them."""
    automations = load_yaml(DEMO_AUTOMATIONS)
    assert isinstance(automations, list)
    (demo,) = (a for a in automations if a["use_blueprint"]["path"] == BLUEPRINT)
    assert await async_setup_component(hass, "persistent_notification", {})
    assert await async_setup_component(hass, "automation", {"automation": [demo]})
    await hass.async_block_till_done()
    shown: dict[str, persistent_notification.Notification] = {}
    persistent_notification.async_register_callback(
        hass, lambda _update, notifications: shown.update(notifications)
    )
    await fire(hass, banks, OVERDUE, "Locker North", **loan(3, "Hand cart"))
    # The demo runs in German: its doors' entity ids come from German names.
    await set_door(hass, german_door(hass, banks, "Locker North", 1), STATE_ON)
    await wait(hass, freezer, minutes=2, seconds=1)  # the demo's shorter door time
    await fire(hass, banks, KEYPAD_LOCKED, "Locker North")
    await fire(hass, banks, KEYPAD_LOCKED, "Locker North")  # replaces the first
    assert {key: (n["title"], n["message"].split(":")[0]) for key, n in shown.items()} == {
        "city_ops_locker_overdue_locker_north_3": (
            "Ausleihe überfällig",
            "Hand cart aus Locker North, Fach 3, ist überfällig",
        ),
        "city_ops_locker_door_open_locker_north_1": (
            "Schließfachtür offen",
            "Locker North, Fach 1 (Walker)",
        ),
        "city_ops_locker_keypad_locked_locker_north_": (
            "Tastenfeld gesperrt",
            "Das Tastenfeld von Locker North ist nach mehreren Fehleingaben gesperrt.",
        ),
    }


def german_door(hass: HomeAssistant, banks: Banks, bank: str, number: int) -> str:
    """A compartment door as a German installation registers it ("Locker North Fach 3 Tür")."""
    entry = er.async_get(hass).async_get_or_create(
        "binary_sensor",
        DOMAIN,
        f"{slug(bank)}-{number}-door-de",
        config_entry=banks.entry,
        device_id=banks.device_ids[bank],
        suggested_object_id=f"{slug(bank)}_fach_{number}_tur",
        original_device_class="door",
        translation_key="door",
    )
    hass.states.async_set(
        entry.entity_id,
        STATE_OFF,
        {"device_class": "door", "friendly_name": f"{bank} Fach {number} Tür"},
    )
    return entry.entity_id


GERMAN_TEXTS = {
    "title_door_open": "Schließfachtür offen",
    "message_door_open": (
        "{{ bank }}, Fach {{ compartment }} ({{ item }}): die Tür ist seit "
        "{{ open_minutes }} min offen."
    ),
}


async def test_german_installation_with_german_texts(
    hass: HomeAssistant,
    banks: Banks,
    setup_alerts: SetupAlerts,
    freezer: FrozenDateTimeFactory,
) -> None:
    """German entity ids and names ("Locker North Fach 3 Tür"): the item is still found."""
    german = german_door(hass, banks, "Locker North", 3)
    calls = await setup_alerts(doors=[german], **GERMAN_TEXTS)
    await set_door(hass, german, STATE_ON)
    await wait(hass, freezer, minutes=5, seconds=1)
    assert [(c.data["title"], c.data["message"]) for c in calls] == [
        (
            "Schließfachtür offen",
            "Locker North, Fach 3 (Hand cart): die Tür ist seit 5 min offen.",
        )
    ]
