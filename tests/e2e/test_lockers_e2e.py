"""End to end: lending lockers on a broker and a hass of their own.

Reserve over REST, collect with the code at the keypad (native MQTT), wrong codes make the
keypad wait (the fifth in a row is announced); then hass is killed (SIGKILL) in the middle of
it all and started again on the same config dir: the bookings, the loan and the wrong-entry
count are still there. Chromium renders the Lockers view; a resident books on the public
booking page at phone size, in German, and cancels a second booking through its link. At the
end every code hass issued is searched for in everything it wrote (logs, .storage, the recorder
database) and everything it showed (events, diagnostics, calendars, the booking page's
responses).

The module runs its own mosquitto and hass (private_* fixtures): killing the session's hass
would take the other modules' hass down, and the session's demo site has a `locker-north` too.
The site holds only the two locker banks of the demo park: masts and containers schedule
delayed saves of the whole site, and the crash must show what the lending path saves at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import re
import secrets
import sqlite3
import time
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.publish as mqtt_publish
from playwright.sync_api import Page, Route, ViewportSize, sync_playwright
import pytest

from demo import REPO_ROOT
from demo.broker import Broker
from demo.homeassistant import (
    HomeAssistantClient,
    HomeAssistantError,
    HomeAssistantEvents,
    HomeAssistantProcess,
)

from .conftest import MqttMessage, MqttRecorder
from .test_console_e2e import outside
from .test_containers_e2e import (
    CHROMIUM,
    CHROMIUM_ARGS,
    create_site,
    render_waste_view,
    wait_for,
)

pytestmark = pytest.mark.e2e

SITE = "Stadtpark Norderstedt"
NORTH = "Locker North"
LAKE = "Locker Lake"
ASSET_FILE = "lockers.geojson"  # the locker banks of demo_park.geojson
NATIVE_BASE = "city_ops"
COMMANDS = f"{NATIVE_BASE}/+/compartment/+/set"
UNLOCK = {"lock": "UNLOCK"}
LOCK = {"lock": "LOCK"}
MAX_FAILURES = 5  # the fifth wrong code in a row announces city_ops_locker_keypad_locked
FOURTH_WAIT_S = 5  # the keypad waits 5 s after the fourth wrong code in a row, 10 s after the fifth
FIFTH_WAIT_S = 10
QUIET_S = 2.5  # no command within this long after hass handled an entry counts as none sent
# The site's delayed save comes after 5 s (runtime.SAVE_DELAY_S); "at once" is well inside.
SAVED_AT_ONCE_S = 1.0
SCREENSHOT = REPO_ROOT / "artifacts" / "screenshots" / "lockers_view.png"
RESERVE_RESPONSE = {
    "reservation_id",
    "bank",
    "compartment",
    "item",
    "item_type",
    "code",
    "return_code",
    "pickup_from",
    "pickup_until",
    "loan_period_min",
}


@dataclass(frozen=True)
class Booking:
    """A reserve response; the codes stay out of the repr (and so out of failure reports)."""

    reservation_id: str
    bank: str
    compartment: int
    item_type: str
    code: str = field(repr=False)
    return_code: str = field(repr=False)


@dataclass
class LockerSite:
    """The module's hass with the demo park's locker banks, and what the tests learnt."""

    ha: HomeAssistantClient
    process: HomeAssistantProcess
    broker: Broker
    config_dir: Path
    events: HomeAssistantEvents
    commands: MqttRecorder
    entry_id: str
    asset_ids: dict[str, str]  # bank name -> subentry id (the key of its stored state)
    devices: dict[str, str]  # bank name -> native device id
    compartments: dict[str, list[int]]  # bank name -> compartment numbers
    issued: list[str] = field(default_factory=list)  # every code a reserve response carried
    reservation_ids: list[str] = field(default_factory=list)
    # The booking page: every response the browser got (label -> body), the codes each showed,
    # and what residents typed or were given that must stay out of logs and storage.
    page_responses: dict[str, bytes] = field(default_factory=dict)
    page_codes: dict[str, list[str]] = field(default_factory=dict)
    page_secrets: list[str] = field(default_factory=list)

    def publish(self, topic: str, payload: dict[str, Any], *, retain: bool = False) -> None:
        """Publish one JSON message (QoS 1) as a bank's controller would."""
        mqtt_publish.single(
            topic,
            json.dumps(payload),
            qos=1,
            retain=retain,
            hostname=self.broker.host,
            port=self.broker.port,
            keepalive=10,
        )

    def report(
        self, bank: str, number: int, *, door_open: bool, locked: bool, item_present: bool
    ) -> None:
        """A compartment's full state, retained like the demo's controllers keep it."""
        self.publish(
            f"{NATIVE_BASE}/{self.devices[bank]}/compartment/{number}/state",
            {
                "door": "open" if door_open else "closed",
                "locked": locked,
                "item_present": item_present,
            },
            retain=True,
        )

    def type_code(self, bank: str, code: str) -> float:
        """Type a code at a bank's keypad (never retained); return when it was sent."""
        sent = time.monotonic()
        self.publish(f"{NATIVE_BASE}/{self.devices[bank]}/keypad", {"code": code})
        return sent

    def device_id(self, bank: str) -> str:
        """The bank's device, found the way a booking page would: by the bank's name."""
        found = self.ha.render_template(
            "{{ integration_entities('city_ops') | map('device_id') | reject('none') | unique"
            f" | select('is_device_attr', 'name', '{bank}') | first | default('') }}}}"
        ).strip()
        assert re.fullmatch(r"[0-9a-f]{32}", found), (bank, found)
        return found

    def entity_id(self, bank: str, key: str, number: int | None = None) -> str:
        """A bank's entity by its key (and compartment): entity ids follow the language."""
        parts = (self.asset_ids[bank], number, key)
        unique_id = "_".join(str(part) for part in parts if part is not None)
        found = [
            entry["entity_id"]
            for entry in self.ha.entity_registry()
            if entry["platform"] == "city_ops" and entry["unique_id"] == unique_id
        ]
        assert len(found) == 1, (unique_id, found)
        return str(found[0])

    def reserve(self, bank: str, compartment: int, borrower: str) -> Booking:
        """city_ops.reserve with ?return_response; every code it hands out is remembered."""
        response = self.ha.call_service(
            "city_ops",
            "reserve",
            {"device_id": self.device_id(bank), "compartment": compartment, "borrower": borrower},
            return_response=True,
        )
        codes = [response.get("code"), response.get("return_code")]
        self.issued += [code for code in codes if isinstance(code, str)]
        self.reservation_ids.append(str(response.get("reservation_id")))
        assert set(response) == RESERVE_RESPONSE, sorted(response)  # keys only: no code shown
        return Booking(
            reservation_id=response["reservation_id"],
            bank=response["bank"],
            compartment=response["compartment"],
            item_type=response["item_type"],
            code=response["code"],
            return_code=response["return_code"],
        )

    def diagnostics(self) -> dict[str, Any]:
        """The site's config entry diagnostics (the `data` part)."""
        return dict(self.ha.config_entry_diagnostics(self.entry_id)["data"])

    def stored(self, bank: str) -> dict[str, Any]:
        """What hass has written to disk for a bank so far (reading only; nothing is flushed)."""
        path = self.config_dir / ".storage" / f"city_ops.{self.entry_id}"
        try:
            data = json.loads(path.read_text("utf-8"))["data"]
        except OSError, ValueError, KeyError:
            return {}
        return dict((data.get("locker_banks") or {}).get(self.asset_ids[bank]) or {})

    def loan_state(self, bank: str, number: int) -> dict[str, Any]:
        """The loan_state sensor of a compartment."""
        entity_id = self.entity_id(bank, "loan_state", number)
        found = self.ha.state(entity_id)
        assert found is not None, entity_id
        return found


def command_topic(site: LockerSite, bank: str, number: int) -> str:
    """The topic a compartment takes lock commands on."""
    return f"{NATIVE_BASE}/{site.devices[bank]}/compartment/{number}/set"


def sent_commands(site: LockerSite, since: float) -> list[tuple[str, Any]]:
    """Lock commands hass published since a moment, as (topic, payload)."""
    return [(m.topic, m.payload) for m in site.commands.since(since)]


def first_command(site: LockerSite, since: float, timeout: float = 10.0) -> MqttMessage:
    """Wait for the first lock command since a moment."""
    found: list[MqttMessage] = wait_for(
        "a lock command on the broker", lambda: site.commands.since(since), site.ha, timeout
    )
    return found[0]


def other_codes(count: int, taken: set[str]) -> list[str]:
    """Codes of the same shape that hass did not issue (for wrong entries and the canary)."""
    codes: list[str] = []
    while len(codes) < count:
        code = f"{secrets.randbelow(10**6):06d}"
        if code not in taken and code not in codes:
            codes.append(code)
    return codes


def wait_saved(site: LockerSite, bank: str, check: Callable[[dict[str, Any]], Any]) -> float | None:
    """Seconds until the bank's stored state passes check (None if not within the limit)."""
    started = time.monotonic()
    while True:
        try:
            if check(site.stored(bank)):
                return time.monotonic() - started
        except KeyError, TypeError:
            pass
        if time.monotonic() - started > SAVED_AT_ONCE_S:
            return None
        time.sleep(0.02)


def wait_locked_entries(site: LockerSite, count: int) -> None:
    """Wait until hass counted `count` keypad entries refused unchecked (keypad locked)."""
    wait_for(
        f"{count} entries refused by the locked keypad (diagnostics)",
        lambda: site.diagnostics()["lockers"]["entries_while_keypad_locked"] >= count,
        site.ha,
        timeout=15,
    )


def wait_received(site: LockerSite) -> None:
    """Wait until the site's MQTT is live for the banks: their states and their keypads.

    The retained reports prove the state subscriptions; a keypad subscription may go out in a
    later batch, and an entry typed before it would be lost. A payload that is no code probes it:
    it is counted as rejected (`bad_code`) and never reaches the lock-out.
    """
    compartments = sum(len(numbers) for numbers in site.compartments.values())
    wait_for(
        "the banks' retained reports",
        lambda: site.diagnostics()["messages"]["received"] >= compartments,
        site.ha,
        timeout=60,
    )

    def bad_codes() -> int:
        return int(site.diagnostics()["messages"]["rejected"].get("bad_code", 0))

    deadline = time.monotonic() + 60
    for device in site.devices.values():
        live = False
        while not live:
            assert time.monotonic() < deadline, f"the keypad of {device} never went live"
            before = bad_codes()
            site.publish(f"{NATIVE_BASE}/{device}/keypad", {"code": "not a code"})
            probe_sent = time.monotonic()
            while not live and time.monotonic() - probe_sent < 2:
                time.sleep(0.1)
                live = bad_codes() > before


@pytest.fixture(scope="module")
def lockers(
    private_ha: HomeAssistantClient,
    private_hass: HomeAssistantProcess,
    private_broker: Broker,
    private_config_dir: Path,
) -> Iterator[LockerSite]:
    """The demo park's locker banks on the module's hass, every compartment closed and full."""
    ha = private_ha
    # Everything from here on is seen: events over one subscription to all of them, commands
    # on the broker.
    events = HomeAssistantEvents(private_hass.base_url, str(ha.token))
    commands = MqttRecorder(
        private_broker.host, private_broker.port, COMMANDS, client_id="e2e-locker-commands"
    )
    try:
        events.wait_subscribed(1)
        park = json.loads((private_config_dir / "demo_park.geojson").read_text("utf-8"))
        banks = [f for f in park["features"] if f["properties"]["kind"] == "locker_bank"]
        names = {f["properties"]["name"] for f in banks}
        assert names == {NORTH, LAKE}, names
        (private_config_dir / ASSET_FILE).write_text(
            json.dumps({"type": "FeatureCollection", "features": banks}), "utf-8"
        )
        entry_id = create_site(ha, SITE)
        site = LockerSite(
            ha=ha,
            process=private_hass,
            broker=private_broker,
            config_dir=private_config_dir,
            events=events,
            commands=commands,
            entry_id=entry_id,
            asset_ids={},
            devices={f["properties"]["name"]: f["properties"]["source"]["device"] for f in banks},
            compartments={
                f["properties"]["name"]: sorted(
                    c["number"] for c in f["properties"]["compartments"]
                )
                for f in banks
            },
        )
        assert site.devices[NORTH] == "locker-north", site.devices
        assert len(site.compartments[NORTH]) == 6, site.compartments
        # The controllers were there first: each reports every compartment, retained.
        for bank, numbers in site.compartments.items():
            for number in numbers:
                site.report(bank, number, door_open=False, locked=True, item_present=True)
        response = ha.call_service(
            "city_ops",
            "import_assets",
            {"config_entry_id": entry_id, "path": ASSET_FILE},
            return_response=True,
            timeout=60,
        )
        assert sorted(response["added"]) == sorted(names), response
        ha.wait_entry_loaded(entry_id)
        site.asset_ids = wait_for(
            "the locker bank subentries",
            lambda: (
                found
                if len(
                    found := {
                        s["title"]: s["subentry_id"]
                        for s in ha.subentries(entry_id)
                        if s["subentry_type"] == "locker_bank"
                    }
                )
                == 2
                else None
            ),
            ha,
        )
        # HA's MQTT client connects a few seconds after the import; a keypad entry sent before
        # would be lost (keypad entries are not retained), the retained reports are not.
        wait_received(site)
        # Every item reported present: each bank lends all of them (the item sensors
        # themselves are disabled by default).
        for bank, numbers in site.compartments.items():
            available = ha.wait_for_state(
                site.entity_id(bank, "items_available"), str(len(numbers))
            )
            assert available == str(len(numbers)), available
        yield site
    finally:
        commands.close()
        events.close()


def test_reserve_collect_lock_out_and_survive_a_crash(lockers: LockerSite) -> None:
    """Reserve, collect at the keypad, lock the keypad, then SIGKILL hass: nothing is lost."""
    site = lockers
    ha = site.ha
    ours = {NORTH}  # events of the bank under test

    def of_north(data: dict[str, Any]) -> bool:
        return data.get("bank") in ours

    # -- 1. reserve, collect with the code at the keypad ------------------------------------
    first = site.reserve(NORTH, 2, "e2e-borrower-1")
    assert (first.bank, first.compartment, first.item_type) == (NORTH, 2, "walker"), first
    # Booleans first: pytest's report of a failed comparison would show the codes.
    six_digits = all(re.fullmatch(r"[0-9]{6}", c) for c in (first.code, first.return_code))
    assert six_digits, "a code is not 6 digits"
    differ = first.code != first.return_code
    assert differ, "the same code for pickup and return"
    # The service answers after the booking is on disk.
    stored = site.stored(NORTH)["compartments"]["2"]["loan"]
    assert stored["reservation_id"] == first.reservation_id, stored
    # The store holds code hashes: only Home Assistant's own user may read it.
    store_file = site.config_dir / ".storage" / f"city_ops.{site.entry_id}"
    assert store_file.stat().st_mode & 0o077 == 0, oct(store_file.stat().st_mode)
    ha.wait_for_state(lockers.entity_id(NORTH, "loan_state", 2), "reserved")

    typed = site.type_code(NORTH, first.code)
    unlock = first_command(site, typed)
    released = site.events.wait_for("city_ops_locker_released", of_north, since=typed)
    assert released.data["reservation_id"] == first.reservation_id
    time.sleep(1.0)  # a second command, had there been one, would be here by now
    # The one command since the site was set up: nothing for the other compartments or banks.
    assert sent_commands(site, 0.0) == [(command_topic(site, NORTH, 2), UNLOCK)]
    assert unlock.at - typed < 5, f"UNLOCK {unlock.at - typed:.1f} s after the code"

    # The borrower opens the door and takes the walker.
    site.report(NORTH, 2, door_open=True, locked=False, item_present=False)
    ha.wait_for_state(lockers.entity_id(NORTH, "loan_state", 2), "on_loan")
    collected_at = time.monotonic()
    site.events.wait_for("city_ops_locker_collected", of_north, since=typed)
    collection_saved = wait_saved(
        site, NORTH, lambda s: (s["compartments"]["2"]["loan"] or {}).get("collected_at")
    )
    # A collection is a fact, not a service call: it is stored at once all the same.
    assert collection_saved is not None, "the collection never reached storage by itself"
    assert sent_commands(site, 0.0) == [(command_topic(site, NORTH, 2), UNLOCK)], (
        "nothing but the one UNLOCK while the door is open"
    )
    # ... and closes it: the bank gets LOCK for that compartment alone.
    closed = time.monotonic()
    site.report(NORTH, 2, door_open=False, locked=False, item_present=False)
    first_command(site, closed)
    time.sleep(1.0)
    assert sent_commands(site, closed) == [(command_topic(site, NORTH, 2), LOCK)]
    site.report(NORTH, 2, door_open=False, locked=True, item_present=False)
    on_loan = site.loan_state(NORTH, 2)
    assert on_loan["state"] == "on_loan"
    # Who booked stays in storage and the reserve answer; every user reads states.
    assert first.reservation_id not in json.dumps(on_loan)
    assert site.stored(NORTH)["compartments"]["2"]["loan"]["reservation_id"] == first.reservation_id

    # -- 2. wrong codes make the keypad wait, longer each time; the fifth announces it ---------
    wrong = other_codes(MAX_FAILURES, set(site.issued))
    started = time.monotonic()
    for failures, code in enumerate(wrong, 1):
        if failures == MAX_FAILURES:
            time.sleep(FOURTH_WAIT_S + 0.5)  # the fourth wrong code in a row made it wait
        site.type_code(NORTH, code)

        def counted(data: dict[str, Any], failures: int = failures) -> bool:
            return of_north(data) and data.get("failures") == failures

        site.events.wait_for("city_ops_locker_code_refused", counted, since=started)
    locked_event = site.events.wait_for("city_ops_locker_keypad_locked", of_north, since=started)
    locked_until = locked_event.data["locked_until"]
    lockout_saved = wait_saved(site, NORTH, lambda s: s["keypad"]["locked_until"] == locked_until)
    assert lockout_saved is not None, (
        f"the wait was not on disk within {SAVED_AT_ONCE_S} s: {site.stored(NORTH)['keypad']}"
    )
    keypad = site.diagnostics()["lockers"]["banks"][NORTH]["keypad"]
    assert keypad["locked_until"] == locked_until, keypad
    assert keypad["failures"] == MAX_FAILURES, keypad
    # An honest borrower after five wrong codes waits seconds, not minutes.
    wait = datetime.fromisoformat(locked_until) - datetime.now(UTC)
    assert timedelta(seconds=5) < wait <= timedelta(seconds=FIFTH_WAIT_S), wait
    assert sent_commands(site, started) == [], "a wrong code must not open anything"

    second = site.reserve(NORTH, 3, "e2e-borrower-2")
    reserved_at = time.monotonic()
    stored = site.stored(NORTH)["compartments"]["3"]["loan"]
    assert stored["reservation_id"] == second.reservation_id, stored
    typed = site.type_code(NORTH, second.code)
    wait_locked_entries(site, 1)
    time.sleep(QUIET_S)
    assert sent_commands(site, typed) == [], "the locked keypad opened a compartment"
    assert site.events.events("city_ops_locker_released", since=typed) == []
    assert site.loan_state(NORTH, 3)["state"] == "reserved"

    # -- 3. crash: SIGKILL, then start again on the same config dir --------------------------
    before = {n: site.loan_state(NORTH, n)["attributes"] for n in (2, 3)}
    before_stored = site.stored(NORTH)["compartments"]
    stored = site.stored(NORTH)  # what the crash leaves; reading it flushes nothing
    assert stored["compartments"]["2"]["loan"]["collected_at"], stored["compartments"]["2"]
    assert stored["compartments"]["3"]["loan"]["reservation_id"] == second.reservation_id
    assert stored["keypad"]["locked_until"] == locked_until
    killed = time.monotonic()
    restart_s = site.process.kill_and_restart()
    timing = (
        f"kill {killed - typed:.1f} s after the last keypad entry, "
        f"{killed - reserved_at:.1f} s after the last service call (reserve), "
        f"{killed - collected_at:.1f} s after the collection; "
        f"lock-out on disk {lockout_saved:.2f} s after its event; "
        f"collection on disk at once: "
        + ("no" if collection_saved is None else f"after {collection_saved:.2f} s")
        + f"; hass API back {restart_s:.1f} s after the kill"
    )
    print(f"\n{timing}")
    ha.drop_connections()
    ha.wait_until_running()
    ha.wait_entry_loaded(site.entry_id)
    site.events.wait_subscribed(2)
    wait_received(site)

    collected = site.loan_state(NORTH, 2)
    assert collected["state"] == "on_loan", collected
    reserved = site.loan_state(NORTH, 3)
    assert reserved["state"] == "reserved", reserved
    for number, state in ((2, collected), (3, reserved)):
        for key in ("pickup_until", "loan_until"):
            assert state["attributes"].get(key) == before[number].get(key), (number, key)
        loan = site.stored(NORTH)["compartments"][str(number)]["loan"]
        assert loan == before_stored[str(number)]["loan"], number
    assert site.stored(NORTH)["compartments"]["3"]["loan"]["reservation_id"] == (
        second.reservation_id
    )
    keypad = site.diagnostics()["lockers"]["banks"][NORTH]["keypad"]
    assert keypad["locked_until"] == locked_until, keypad
    assert keypad["failures"] == MAX_FAILURES, keypad  # the count survived the crash

    # Once the wait is over, the uncollected reservation's code, refused before, opens. A fast
    # restart can come back before the wait ends: an entry then would be refused, rightly.
    left = (datetime.fromisoformat(locked_until) - datetime.now(UTC)).total_seconds()
    time.sleep(max(0.0, left) + 0.5)
    typed = site.type_code(NORTH, second.code)
    unlock = first_command(site, typed, timeout=30.0)
    assert (unlock.topic, unlock.payload) == (command_topic(site, NORTH, 3), UNLOCK)
    assert sent_commands(site, killed) == [(command_topic(site, NORTH, 3), UNLOCK)]


def test_lockers_view_renders_after_the_workflow(lockers: LockerSite) -> None:
    """The Lockers view of the dashboard renders the banks without error cards."""
    ha = lockers.ha
    try:
        ha.ws({"type": "get_services"})
    except HomeAssistantError as err:
        pytest.fail(f"HA's frontend cannot load, websocket get_services fails:\n{err}")
    states = {
        entity_id: (ha.state(entity_id) or {}).get("state")
        for entity_id in [
            lockers.entity_id(NORTH, "items_available"),
            lockers.entity_id(LAKE, "items_available"),
        ]
        + [lockers.entity_id(NORTH, "loan_state", n) for n in lockers.compartments[NORTH]]
    }
    print("\n" + ", ".join(f"{k.split('.')[1]}={v}" for k, v in states.items()))
    blocked: list[str] = []
    problems = render_waste_view(
        lockers.process.base_url,
        blocked,
        view_path="stadtpark-norderstedt-lockers",
        screenshot=SCREENSHOT,
    )
    print(f"\nscreenshot: {SCREENSHOT}; blocked off-host requests: {blocked[:5]}")
    assert problems == {}, problems


BOOKING_PAGE = "/city_ops/book/stadtpark-norderstedt"
PHONE: ViewportSize = {"width": 390, "height": 844}
SHOTS = REPO_ROOT / "artifacts" / "screenshots"
CONTACT = "Erna Schulz 0171 555"


@dataclass
class PageResponse:
    """One answer the resident's browser got."""

    label: str
    status: int
    headers: dict[str, str]
    body: bytes


def record_local(base_url: str, seen: list[PageResponse]) -> Callable[[Route], None]:
    """A route handler: this hass only, and every answer kept (the scan reads them later)."""
    own = urlsplit(base_url).netloc

    def handle(route: Route) -> None:
        url = urlsplit(route.request.url)
        if url.netloc != own:
            route.abort()
            return
        response = route.fetch()
        body = response.body()
        # Labels end up in test reports: a cancel link's token stays out of them.
        path = re.sub(r"/booking/[^/]+", "/booking/(token)", url.path)
        label = f"{len(seen):02d} {route.request.method} {path}"
        seen.append(PageResponse(label, response.status, response.headers, body))
        route.fulfill(response=response, body=body)

    return handle


def switch_on_booking_page(site: LockerSite) -> None:
    """The operator switches the page and the feed on in the site's options (REST, as the UI)."""
    site.ha.update_options(site.entry_id, {"booking_page": True, "availability_feed": True})
    wait_received(site)


def reserve_on_page(page: Page, item: str, seen: list[PageResponse]) -> PageResponse:
    """Choose an item at Locker Lake, give the contact, send; return the result's response."""
    page.get_by_label(re.compile(rf"^{item} · {LAKE}")).check()
    page.get_by_role("textbox", name=re.compile("Ihre Kontaktangabe")).fill(CONTACT)
    before = len(seen)
    page.get_by_role("button", name="Jetzt reservieren").click()
    page.wait_for_load_state("domcontentloaded")
    posts = [r for r in seen[before:] if " POST " in r.label]
    assert len(posts) == 1, [r.label for r in seen[before:]]
    assert posts[0].status == 201, posts[0].body[:3000]
    return posts[0]


def codes_shown(page: Page) -> list[str]:
    """The pickup and return code of a result page, as a screen reader reads them."""
    return [
        (page.locator(".code strong").nth(i).get_attribute("aria-label") or "").replace(" ", "")
        for i in range(2)
    ]


def compartment_shown(page: Page) -> int:
    """The compartment a result page names ("Fach 2")."""
    status = page.get_by_role("status").inner_text()
    found = re.search(r"Fach (\d+)", status)
    assert found, status
    return int(found.group(1))


def test_residents_book_on_the_page_in_german(lockers: LockerSite) -> None:
    """A resident reserves a walker on a phone in German, the keypad opens it; a second booking
    is cancelled through its link. Everything goes through the site's lending, like a service."""
    site = lockers
    ha = site.ha
    switch_on_booking_page(site)
    url = f"{site.process.base_url}{BOOKING_PAGE}"
    seen: list[PageResponse] = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport=PHONE, locale="de-DE", is_mobile=True, has_touch=True
            )
            context.route("**/*", record_local(site.process.base_url, seen))
            page = context.new_page()
            page.goto(url)
            assert page.locator("html").get_attribute("lang") == "de"
            assert page.get_by_role("main").count() == 1
            page.screenshot(path=str(SHOTS / "booking_page_de.png"), full_page=True)

            # -- 1. a walker: the codes, once, and the keypad opens that compartment alone --
            walker = reserve_on_page(page, "Rollator", seen)
            page.screenshot(path=str(SHOTS / "booking_codes_de.png"), full_page=True)
            codes = codes_shown(page)
            site.issued.extend(codes)
            site.page_codes[walker.label] = codes
            six_digits = all(re.fullmatch(r"[0-9]{6}", code) for code in codes)
            assert six_digits, "the page shows no two 6-digit codes"
            number = compartment_shown(page)
            assert page.get_by_text("Abholcode", exact=True).count() == 1
            assert walker.headers.get("cache-control") == "no-store"
            assert "frame-ancestors 'none'" in walker.headers.get("content-security-policy", "")
            site.page_secrets.append(str(page.locator("#manage").get_attribute("href")))

            outside(
                lambda: ha.wait_for_state(site.entity_id(LAKE, "loan_state", number), "reserved")
            )
            typed = site.type_code(LAKE, codes[0])
            outside(lambda: first_command(site, typed))
            time.sleep(1.0)  # a second command, had there been one, would be here by now
            assert sent_commands(site, typed) == [(command_topic(site, LAKE, number), UNLOCK)]
            site.report(LAKE, number, door_open=True, locked=False, item_present=False)
            outside(
                lambda: ha.wait_for_state(site.entity_id(LAKE, "loan_state", number), "on_loan")
            )
            site.report(LAKE, number, door_open=False, locked=True, item_present=False)

            # -- 2. a hand cart, cancelled through its link --------------------------------
            page.goto(url)
            cart = reserve_on_page(page, "Handwagen", seen)
            cart_codes = codes_shown(page)
            site.issued.extend(cart_codes)
            site.page_codes[cart.label] = cart_codes
            cart_number = compartment_shown(page)
            outside(
                lambda: ha.wait_for_state(
                    site.entity_id(LAKE, "loan_state", cart_number), "reserved"
                )
            )
            link = str(page.locator("#manage").get_attribute("href"))
            site.page_secrets.append(link)
            page.locator("#manage").click()
            page.wait_for_load_state("domcontentloaded")
            page.screenshot(path=str(SHOTS / "booking_manage_de.png"), full_page=True)
            assert page.get_by_text("Ausleihe verlängern").count() == 0
            cancelled_at = time.monotonic()
            page.get_by_role("button", name="Reservierung stornieren").click()
            page.wait_for_load_state("domcontentloaded")
            page.get_by_text("Ihre Reservierung ist storniert").wait_for(timeout=10_000)
            page.screenshot(path=str(SHOTS / "booking_cancelled_de.png"), full_page=True)
            outside(
                lambda: ha.wait_for_state(
                    site.entity_id(LAKE, "loan_state", cart_number), "available"
                )
            )
            assert sent_commands(site, cancelled_at) == [], "a cancel opens nothing"

            # The open feed says what is free now (the walker is out).
            feed = page.request.get(f"{url}/feed/station_status.json")
            assert feed.ok, feed.status
            lake = next(
                s for s in feed.json()["data"]["stations"] if s["station_id"] == "locker-lake"
            )
            counts = {i["item_type"]: i["count"] for i in lake["items_available"]}
            assert counts["walker"] == 0, counts
            assert counts["hand_cart"] == 1, counts
        finally:
            browser.close()

    # Operators see the page's booking like any other: the calendar of the bank.
    now = datetime.now(UTC)
    events = ha.calendar_events(
        site.entity_id(LAKE, "reservations"), now - timedelta(hours=1), now + timedelta(days=1)
    )
    assert events, "the page's booking is not in the bank's calendar"
    site.page_secrets.append(CONTACT)
    site.page_responses = {r.label: r.body for r in seen}
    for response in seen:
        shown = sorted(c for c in site.issued if page_shows(c, response.body))
        assert shown == sorted(site.page_codes.get(response.label, [])), response.label
    print(
        f"\nbooking page: {len(seen)} responses, "
        + ", ".join(f"{r.label} {r.status}" for r in seen)
        + f"; screenshots in {SHOTS}"
    )


# A code stands alone: not inside a longer number, and not the fraction of a decimal (the
# microseconds of every timestamp are six digits too, and would match one code in a million).
def _code_pattern(code: str) -> re.Pattern[bytes]:
    return re.compile(rb"(?<![0-9])(?<![0-9]\.)" + re.escape(code.encode()) + rb"(?![0-9])")


def page_shows(code: str, body: bytes) -> bool:
    """Whether a page holds a code in any form a person or a screen reader could read it."""
    forms = (code, f"{code[:3]}&#8239;{code[3:]}", " ".join(code))
    return any(_code_pattern(form).search(body) for form in forms)


def test_no_issued_code_is_written_or_shown_anywhere(lockers: LockerSite) -> None:
    """Logs, events, diagnostics, calendars, .storage and the recorder never hold a code."""
    site = lockers
    ha = site.ha
    # A booking at the other bank too, so the scan has codes even when the workflow failed.
    site.reserve(LAKE, 3, "e2e-borrower-3")
    marker = site.reservation_ids[0]  # a value every source must hold: proof it was read
    assert len(site.issued) >= 2, "no codes to look for"

    sources: dict[str, bytes] = {
        "diagnostics": json.dumps(ha.config_entry_diagnostics(site.entry_id)).encode()
    }
    now = datetime.now(UTC)
    calendar_ids = [site.entity_id(bank, "reservations") for bank in (NORTH, LAKE)]
    for calendar in calendar_ids:
        events = ha.calendar_events(calendar, now - timedelta(days=1), now + timedelta(days=2))
        sources[f"GET /api/calendars/{calendar}"] = json.dumps(events).encode()
    # Everything is on disk once hass has stopped: the recorder's last commit, the last log line.
    assert site.process.stop() == 0, site.process.log_tail()
    site.events.close()
    seen = site.events.events()
    sources["websocket events"] = "\n".join(event.raw for event in seen).encode()

    config = site.config_dir
    canary = other_codes(1, set(site.issued))[0]
    log = config / "home-assistant.log"
    with log.open("a", encoding="utf-8") as handle:
        handle.write(
            f'2000-01-01 00:00:00.000 INFO (MainThread) [e2e] planted "code": "{canary}"\n'
        )
    files = [
        *sorted(config.glob("home-assistant.log*")),
        *sorted(p for p in (config / ".storage").rglob("*") if p.is_file()),
        *sorted(config.glob("home-assistant_v2.db*")),
    ]
    for path in files:
        sources[str(path.relative_to(config))] = path.read_bytes()
    database = config / "home-assistant_v2.db"
    # sqlite3's own context manager ends a transaction but leaves the connection open.
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        sources["home-assistant_v2.db (sql dump)"] = "\n".join(db.iterdump()).encode()
        recorded = dict(
            db.execute(
                "SELECT t.event_type, COUNT(*) FROM events e "
                "JOIN event_types t ON e.event_type_id = t.event_type_id GROUP BY t.event_type"
            ).fetchall()
        )

    hits: dict[str, list[str]] = {}
    fractions = 0
    for code in [*site.issued, canary]:
        pattern = _code_pattern(code)
        for name, content in sources.items():
            if pattern.search(content):
                hits.setdefault("canary" if code == canary else "an issued code", []).append(name)
            fractions += content.count(b"." + code.encode())
    print(
        f"\nscanned {len(sources)} sources ({sum(map(len, sources.values())) // 1024} KiB, "
        f"{len(seen)} events) for {len(site.issued)} issued codes; "
        f"decimal fractions equal to a code, ignored: {fractions}; recorded event types: "
        f"{sorted(recorded)}"
    )
    assert hits == {"canary": ["home-assistant.log"]}, hits
    # The booking page: a code only in the one response that showed it; what residents typed
    # (their contact) and the cancel links' tokens in nothing Home Assistant wrote or showed.
    for label, body in site.page_responses.items():
        in_page = sorted(code for code in site.issued if page_shows(code, body))
        assert in_page == sorted(site.page_codes.get(label, [])), f"codes in {label}"
    leaked = {
        name
        for secret in site.page_secrets
        for name, content in sources.items()
        if secret.encode() in content
    }
    assert leaked == set(), leaked

    # The scan read real content: the first booking's id is in every place that shows bookings.
    store = f".storage/city_ops.{site.entry_id}"
    sources_of = {name: [name] for name in ("diagnostics", "websocket events", store)}
    sources_of["the recorder"] = ["home-assistant_v2.db (sql dump)"]
    for what, names in sources_of.items():
        shown = any(marker.encode() in sources.get(name, b"") for name in names)
        assert shown, f"{what} do(es) not show the first booking"
    # Every user reads calendars: they show the bookings, never who booked.
    calendars = b"".join(sources.get(f"GET /api/calendars/{c}", b"") for c in calendar_ids)
    assert calendars.count(b'"summary"') >= 2, calendars[:300]
    for reference in (*site.reservation_ids, "e2e-borrower-1", "e2e-borrower-2"):
        assert reference.encode() not in calendars, "a calendar shows who booked"
    # The killed run's log (HA rotated it at the restart) was read too.
    assert b"city_ops" in sources.get("home-assistant.log.1", b""), sorted(sources)
    assert any(e.event_type == "call_service" for e in seen), "no call_service event seen"
    # Service data never reaches the recorder (config/configuration.yaml excludes the event):
    # city_ops.release_code carries a code in it.
    assert "call_service" not in recorded, recorded
    assert recorded.get("city_ops_locker_reserved"), recorded
