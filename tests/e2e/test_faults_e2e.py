"""Fault injection on the real parts: hostile users, a broker that goes away, floods, SIGKILL.

The module runs the locker site of test_lockers_e2e (its `lockers` fixture: a mosquitto and a
hass of this module's own) plus one mast and one TTN container, then:

- a read-only user and a non-admin user call every service (from services.yaml) and every
  entity action of our entities' domains (from hass's own list) over REST;
- mosquitto is stopped while a borrower types a code and an operator switches a lamp, and
  started again: the calls fail with the translated error, nothing is used up, and the same
  code opens after reconnecting; a keypad entry queued during the outage is refused as stale;
- undecodable messages, each on a TTN device topic of its own, flood the site: the log grows
  by a bounded number of lines while diagnostics count every message;
- hass is SIGKILLed in the middle of bursts of reserve/cancel calls: every acknowledged
  booking is on disk after the restart, none twice;
- the site is reloaded five times and a keypad and a bin send something the moment it is
  loaded again: nothing is lost (the site waits for the broker's SUBACKs before "loaded");
- Zigbee2MQTT says the mast is offline, then online: its light goes unavailable and back.

Each test prints its figures (tried / lost / refused).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import json
import secrets
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
import pytest
import yaml

from demo import REPO_ROOT
from demo.homeassistant import HomeAssistantClient

from .conftest import MqttRecorder
from .test_containers_e2e import wait_for
from .test_lockers_e2e import (
    LAKE,
    LOCK,
    NATIVE_BASE,
    NORTH,
    UNLOCK,
    LockerSite,
    command_topic,
    first_command,
    lockers,
    sent_commands,
    wait_received,
)

pytestmark = pytest.mark.e2e

__all__ = ["lockers"]  # the module-scoped site fixture, shared with test_lockers_e2e

MAST = "Fault Mast"
MAST_DEVICE = "fault-mast"
BIN = "Fault Bin"
EXTRAS_FILE = "fault_extras.geojson"
FLOOD = 5_000
FLOOD_BATCH = 500
FLOOD_LINES_MAX = 10  # a line per kind of problem; the kinds are few, the messages many
BURST_WORKERS = 4
BURST_S = 3.0  # reserve/cancel this long, then SIGKILL
KILLS = 3
OUTAGE_S = 5.0
UNREACHABLE = "cannot be reached right now"  # the English text of both unreachable errors


@dataclass
class FaultSite:
    """The locker site with a mast and a container, and recorders for the lamp's commands."""

    lockers: LockerSite
    lamp_commands: MqttRecorder
    light: str  # the mast's light (entity ids follow the language: found in the registry)
    log_lines: list[int] = field(default_factory=list)

    @property
    def ha(self) -> HomeAssistantClient:
        """The admin's client."""
        return self.lockers.ha


def our_log_lines(site: LockerSite) -> list[str]:
    """Lines of hass's log written by this integration."""
    text = (site.config_dir / "home-assistant.log").read_text("utf-8", errors="replace")
    return [line for line in text.splitlines() if "custom_components.city_ops" in line]


@pytest.fixture(scope="module")
def faults(lockers: LockerSite) -> Iterator[FaultSite]:
    """Add a Zigbee2MQTT mast and a TTN container to the locker site."""
    site = lockers
    extras = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [10.0048, 53.7001]},
                "properties": {
                    "kind": "mast",
                    "name": MAST,
                    "source": {"kind": "zigbee2mqtt", "device": MAST_DEVICE},
                    "path": "Hauptweg",
                    "rated_power_w": 40,
                    "neighbours": [],
                },
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [10.0046, 53.7002]},
                "properties": {
                    "kind": "container",
                    "name": BIN,
                    "source": {"kind": "ttn", "device": "fault-bin-1"},
                    "waste_kind": "residual",
                    "volume_l": 240,
                    "depth_mm": 900,
                    "sensor_offset_mm": 120,
                    "report_interval_s": 3600,
                },
            },
        ],
    }
    (site.config_dir / EXTRAS_FILE).write_text(json.dumps(extras), "utf-8")
    added = site.ha.call_service(
        "city_ops",
        "import_assets",
        {"config_entry_id": site.entry_id, "path": EXTRAS_FILE},
        return_response=True,
        timeout=60,
    )
    assert sorted(added["added"]) == sorted([MAST, BIN]), added
    site.ha.wait_entry_loaded(site.entry_id)
    lights = wait_for(
        "the mast's light",
        lambda: site.ha.find_entities(platform="city_ops", domain="light"),
        site.ha,
        timeout=60,
    )
    assert len(lights) == 1, lights
    light = str(lights[0]["entity_id"])
    wait_for("the light's state", lambda: site.ha.state(light), site.ha, timeout=60)
    wait_received(site)
    recorder = MqttRecorder(
        site.broker.host, site.broker.port, "zigbee2mqtt/+/set", client_id="e2e-fault-lamps"
    )
    try:
        yield FaultSite(site, recorder, light)
    finally:
        recorder.close()


# -- 1. who may do what ------------------------------------------------------------------------


def create_user(ha: HomeAssistantClient, name: str, group: str) -> str:
    """Create a Home Assistant user with a password login; return an access token for it."""
    user = ha.ws({"type": "config/auth/create", "name": name, "group_ids": [group]})["user"]
    username, password = f"e2e-{name.lower()}", secrets.token_urlsafe(16)
    ha.ws(
        {
            "type": "config/auth_provider/homeassistant/create",
            "user_id": user["id"],
            "username": username,
            "password": password,
        }
    )
    flow = ha.request(
        "POST",
        "/auth/login_flow",
        json_data={
            "client_id": ha.client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": f"{ha.base_url}/?auth_callback=1",
        },
    )
    done = ha.request(
        "POST",
        f"/auth/login_flow/{flow['flow_id']}",
        json_data={"username": username, "password": password, "client_id": ha.client_id},
    )
    assert done.get("type") == "create_entry", done
    return ha.exchange_auth_code(str(done["result"]))


SERVICES_YAML = REPO_ROOT / "custom_components" / "city_ops" / "services.yaml"
ENTITY_DOMAINS = ("light", "lock", "todo", "calendar")  # our platforms that have actions
NOT_OFFERED = "not offered"  # an action our entity does not support: refused for everyone


def test_read_only_and_non_admin_users_against_every_service_and_action(
    faults: FaultSite,
) -> None:
    """401 for every refused call, before anything is sent or changed.

    The services come from services.yaml and the entity actions from hass's own list for the
    domains of our entities: a new service or action without a line here fails the test.
    """
    site = faults.lockers
    ha = faults.ha
    north = site.device_id(NORTH)
    admin_booking = site.reserve(NORTH, 1, "e2e-fault-1")  # something to cancel or extend
    tokens = {
        "read-only": create_user(ha, "Reader", "system-read-only"),
        "operator": create_user(ha, "Operator", "system-users"),
    }
    lock_2 = site.entity_id(NORTH, "compartment", 2)
    route = str(ha.find_entities(domain="todo")[0]["entity_id"])
    calendar = str(ha.find_entities(domain="calendar", device_id=north)[0]["entity_id"])
    operator: set[str] = {"operator"}
    nobody: set[str] = set()
    everyone = {"read-only", "operator"}
    services: dict[str, tuple[dict[str, Any], set[str] | str]] = {
        # service: (data, the roles allowed)
        "reserve": ({"device_id": north, "compartment": 3}, operator),
        "extend": ({"device_id": north, "compartment": 1, "minutes": 5}, operator),
        "release_code": ({"device_id": north, "code": "000000"}, operator),
        "boost": ({"entity_id": faults.light}, operator),
        "plan_collection": ({}, everyone),  # an answer only; it changes nothing
        "open_for_maintenance": ({"device_id": north, "compartment": 2}, nobody),
        "mark_returned": ({"device_id": north, "compartment": 1}, nobody),
        "set_out_of_service": ({"device_id": north, "compartment": 4}, nobody),
        "export_assets": ({"config_entry_id": site.entry_id, "path": "x.geojson"}, nobody),
        "import_assets": ({"config_entry_id": site.entry_id, "path": EXTRAS_FILE}, nobody),
        "cancel": ({"device_id": north, "compartment": 1}, operator),  # last: ends the booking
    }
    actions: dict[tuple[str, str], tuple[dict[str, Any], set[str] | str]] = {
        ("light", "turn_on"): ({"entity_id": faults.light, "brightness": 200}, operator),
        ("light", "turn_off"): ({"entity_id": faults.light}, operator),
        ("light", "toggle"): ({"entity_id": faults.light}, operator),
        ("lock", "lock"): ({"entity_id": lock_2}, operator),
        ("lock", "unlock"): ({"entity_id": lock_2}, nobody),
        ("lock", "open"): ({"entity_id": lock_2}, NOT_OFFERED),
        ("todo", "update_item"): (
            {"entity_id": route, "item": "no such stop", "status": "completed"},
            operator,
        ),
        ("todo", "get_items"): ({"entity_id": route}, operator),
        ("todo", "add_item"): ({"entity_id": route, "item": "x"}, NOT_OFFERED),
        ("todo", "remove_item"): ({"entity_id": route, "item": "x"}, NOT_OFFERED),
        ("todo", "remove_completed_items"): ({"entity_id": route}, NOT_OFFERED),
        ("calendar", "get_events"): ({"entity_id": calendar, "duration": {"hours": 1}}, operator),
        (
            "calendar",
            "create_event",
        ): (
            {
                "entity_id": calendar,
                "summary": "x",
                "start_date_time": "2030-01-01 10:00:00",
                "end_date_time": "2030-01-01 11:00:00",
            },
            NOT_OFFERED,
        ),
    }
    listed = {
        (entry["domain"], name)
        for entry in ha.request("GET", "/api/services")
        if entry["domain"] in ENTITY_DOMAINS
        for name in entry["services"]
    }
    with SERVICES_YAML.open(encoding="utf-8") as file:
        assert set(services) == set(yaml.safe_load(file)), "a service without a line here"
    assert set(actions) == listed, "an entity action without a line here"
    responding = {"plan_collection", "get_items", "get_events", "reserve"}
    calls = [("city_ops", name, data, roles) for name, (data, roles) in services.items()]
    calls += [(domain, name, data, roles) for (domain, name), (data, roles) in actions.items()]
    calls.sort(key=lambda call: call[1] == "cancel")  # the booking goes last
    tried = refused = allowed = 0
    for role in ("read-only", "operator"):
        for domain, service, data, roles in calls:
            states = {n: site.loan_state(NORTH, n)["state"] for n in site.compartments[NORTH]}
            started = time.monotonic()
            path = f"/api/services/{domain}/{service}"
            if service in responding:
                path += "?return_response"
            status, body = ha.send("POST", path, json_data=data, token=tokens[role])
            tried += 1
            if isinstance(roles, set) and role in roles:
                allowed += 1
                # Past the check; the rules may still refuse (a wrong code: HTTP 400).
                assert status in (200, 400), (role, service, status, body[:300])
                continue
            refused += 1
            if roles == NOT_OFFERED:  # whichever comes first: no permission or no such action
                assert status in (400, 401), (role, service, status, body[:300])
            else:
                assert status == 401, (role, service, status, body[:300])
            time.sleep(0.3)  # a command, had one gone out, would be on the broker by now
            assert sent_commands(site, started) == [], (role, service)
            if domain == "light" or service == "boost":
                assert faults.lamp_commands.since(started) == [], (role, service)
            after = {n: site.loan_state(NORTH, n)["state"] for n in site.compartments[NORTH]}
            assert after == states, (role, service)
    assert not (site.config_dir / "x.geojson").exists()
    # The operator cancelled the admin's booking: operators may.
    assert site.stored(NORTH)["compartments"]["1"]["loan"] is None, admin_booking
    print(
        f"\nroles: {len(calls)} services and entity actions x 2 users = {tried} calls tried, "
        f"{refused} refused, {allowed} let through"
    )
    expected_allowed = sum(
        isinstance(roles, set) and role in roles
        for role in ("read-only", "operator")
        for _, _, _, roles in calls
    )
    assert (tried, allowed) == (2 * len(calls), expected_allowed)


# -- 2. a flood of undecodable messages ----------------------------------------------------------


def test_a_flood_on_unique_topics_adds_a_bounded_number_of_log_lines(faults: FaultSite) -> None:
    site = faults.lockers
    before_lines = len(our_log_lines(site))
    before = site.diagnostics()["messages"]
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="e2e-flood")
    publisher.connect(site.broker.host, site.broker.port, keepalive=30)
    publisher.loop_start()
    messages: dict[str, Any] = before
    try:
        # In batches, each taken in before the next: the broker's queue for a slow subscriber
        # is bounded and would drop the excess, which is not what this test is about.
        for start in range(0, FLOOD, FLOOD_BATCH):
            for n in range(start, min(start + FLOOD_BATCH, FLOOD)):
                topic = f"v3/flood@ttn/devices/intruder-{n}/up"
                payload: bytes = (
                    b"\xff\xfe not json"
                    if n % 3 == 0
                    else b'{"uplink_message": "no object"}'
                    if n % 3 == 1
                    else b"[1, 2, 3]"
                )
                publisher.publish(topic, payload, qos=1)
            sent = min(start + FLOOD_BATCH, FLOOD)

            def counted(sent: int = sent) -> dict[str, Any] | None:
                found: dict[str, Any] = site.diagnostics()["messages"]
                return found if found["received"] - before["received"] >= sent else None

            messages = wait_for(f"{sent} flood messages counted", counted, site.ha, timeout=60)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
    time.sleep(1.0)  # let the log handler write what it writes
    grown = len(our_log_lines(site)) - before_lines
    rejected = (messages["rejected_total"] - before["rejected_total"]) + (
        messages["unknown_devices"] - before["unknown_devices"]
    )
    print(
        f"\nflood: {FLOOD} messages on {FLOOD} topics, {rejected} rejected and counted, "
        f"log +{grown} lines, {messages['log_lines_suppressed']} suppressed"
    )
    assert rejected == FLOOD
    assert 1 <= grown <= FLOOD_LINES_MAX


# -- 3. the broker goes away and comes back -----------------------------------------------------


def test_broker_down_and_back_during_keypad_use_and_a_light_command(faults: FaultSite) -> None:
    site = faults.lockers
    ha = faults.ha
    north = site.device_id(NORTH)
    booking = site.reserve(NORTH, 5, "e2e-fault-outage")
    keypad_before = site.diagnostics()["lockers"]["banks"][NORTH]["keypad"]
    stopped = time.monotonic()
    site.broker.stop()
    tried = refused = 0
    try:
        # HA notices at once (the socket closes); a call just before may still find it up.
        def release() -> tuple[int, str]:
            return ha.send(
                "POST",
                "/api/services/city_ops/release_code",
                json_data={"device_id": north, "code": booking.code},
            )

        status, body = wait_for(
            "the bank reported unreachable",
            lambda: found if UNREACHABLE in (found := release())[1] else None,
            ha,
            timeout=20,
        )
        tried, refused = tried + 1, refused + 1
        assert status == 400, (status, body)
        for domain, service, data in (
            ("city_ops", "open_for_maintenance", {"device_id": north, "compartment": 6}),
            ("light", "turn_on", {"entity_id": faults.light, "brightness": 255}),
        ):
            status, body = ha.send("POST", f"/api/services/{domain}/{service}", json_data=data)
            tried += 1
            refused += UNREACHABLE in body
            assert UNREACHABLE in body, (service, status, body[:300])
            assert "Traceback" not in body
        # The same code again, and again: never counted as wrong.
        for _ in range(3):
            status, body = release()
            tried, refused = tried + 1, refused + (UNREACHABLE in body)
        keypad = site.diagnostics()["lockers"]["banks"][NORTH]["keypad"]
        assert keypad["failures"] == keypad_before["failures"], keypad
        assert site.loan_state(NORTH, 5)["state"] == "reserved"
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
    finally:
        site.broker.start()
    outage_s = time.monotonic() - stopped
    wait_received(site)  # HA reconnected and subscribed again
    reconnected_s = time.monotonic() - stopped
    wait_listening(site, site.commands, "city_ops/probe/compartment/0/set")
    wait_listening(site, faults.lamp_commands, "zigbee2mqtt/probe/set")
    # A call that raced the disconnect may have left its UNLOCK in the MQTT client's queue;
    # the LOCK sent after it is queued behind it: no compartment is left unlocked.
    late = [(t, p) for t, p in sent_commands(site, stopped) if "/probe/" not in t]
    last = dict(late)
    assert all(payload == LOCK for payload in last.values()), late

    # An entry the bank queued during the outage arrives now, 30 s old: nobody stands there.
    stale_before = site.diagnostics()["lockers"]["stale_entries"]
    queued = time.monotonic()
    typed_at = datetime.now(UTC) - timedelta(seconds=30)
    site.publish(
        f"city_ops/{site.devices[NORTH]}/keypad", {"code": booking.code, "ts": typed_at.timestamp()}
    )
    wait_for(
        "the stale entry counted",
        lambda: site.diagnostics()["lockers"]["stale_entries"] > stale_before,
        ha,
    )
    assert sent_commands(site, queued) == []

    # Typed now (with its time, and redelivered by QoS 1): the code opens, once.
    typed = time.monotonic()
    now_entry = {"code": booking.code, "ts": datetime.now(UTC).isoformat()}
    # (site.publish is QoS 1 like a keypad; the second message is the broker's redelivery.)
    site.publish(f"city_ops/{site.devices[NORTH]}/keypad", now_entry)
    site.publish(f"city_ops/{site.devices[NORTH]}/keypad", now_entry)
    unlock = first_command(site, typed)
    assert (unlock.topic, unlock.payload) == (command_topic(site, NORTH, 5), UNLOCK)
    wait_for(
        "the redelivered entry recognised",
        lambda: site.diagnostics()["lockers"]["codes_repeated"] >= 1,
        ha,
    )
    time.sleep(1.0)
    assert sent_commands(site, typed) == [(command_topic(site, NORTH, 5), UNLOCK)]
    keypad = site.diagnostics()["lockers"]["banks"][NORTH]["keypad"]
    assert keypad["failures"] == keypad_before["failures"], keypad

    # The operator's lamp command goes through now.
    lamp = time.monotonic()
    ha.call_service("light", "turn_on", {"entity_id": faults.light, "brightness": 255})
    wait_for("the lamp command on the broker", lambda: faults.lamp_commands.since(lamp), ha)
    print(
        f"\nbroker outage: {tried} calls during {outage_s:.1f} s, {refused} refused with the "
        f"translated error, 0 codes used or counted; reconnected and live after "
        f"{reconnected_s:.1f} s; 1 stale entry refused, 1 redelivery recognised"
    )
    assert refused == tried


def wait_listening(site: LockerSite, recorder: MqttRecorder, topic: str) -> None:
    """Wait until a recorder has reconnected to the restarted broker (paho backs off)."""

    def heard() -> bool:
        since = time.monotonic()
        site.publish(topic, {"probe": True})
        time.sleep(0.3)
        return any(m.topic == topic for m in recorder.since(since))

    wait_for(f"the recorder of {topic} back on the broker", heard, site.ha, timeout=60)


# -- 4. SIGKILL during bursts of bookings ------------------------------------------------------


@dataclass
class Ledger:
    """What one worker tried and what hass acknowledged, per compartment, in order."""

    bank: str
    compartment: int
    ops: list[tuple[str, str | None, bool]] = field(default_factory=list)  # (op, id, acked)

    def check(self, stored: dict[str, Any] | None, acked_ids: set[str]) -> bool:
        """Whether the stored booking is one the acknowledged calls allow.

        After the acknowledged calls the compartment holds their last booking (or none); a
        call in flight at the kill may or may not have happened, so either outcome is honest.
        """
        held: str | None = None
        for op, reservation, acked in self.ops:
            if acked:
                held = reservation if op == "reserve" else None
        stored_id = stored["reservation_id"] if stored else None
        if not self.ops or self.ops[-1][2]:
            return stored_id == held
        op, reservation, _ = self.ops[-1]
        if op == "reserve":  # its id never came back: a new booking or none
            return stored_id is None or stored_id not in acked_ids
        return stored_id in (reservation, None)


def burst(site: LockerSite, ledger: Ledger, device_id: str, stop: threading.Event) -> None:
    """Reserve and cancel one compartment as fast as hass answers, until it dies.

    Each worker has a client of its own: a client runs its own event loop.
    """
    client = HomeAssistantClient(site.ha.base_url, token=site.ha.token, timeout=10)
    try:
        while not stop.is_set():
            ledger.ops.append(("reserve", None, False))
            status, body = client.send(
                "POST",
                "/api/services/city_ops/reserve?return_response",
                json_data={"device_id": device_id, "compartment": ledger.compartment},
            )
            if status != 200:
                return
            reservation = json.loads(body)["service_response"]["reservation_id"]
            ledger.ops[-1] = ("reserve", reservation, True)
            ledger.ops.append(("cancel", reservation, False))
            status, body = client.send(
                "POST",
                "/api/services/city_ops/cancel",
                json_data={"device_id": device_id, "reservation_id": reservation},
            )
            if status != 200:
                return
            ledger.ops[-1] = ("cancel", reservation, True)
    except Exception:  # hass killed under the request: the op stays unacknowledged
        return
    finally:
        client.close()


def test_sigkill_during_bursts_of_bookings_loses_nothing_acknowledged(faults: FaultSite) -> None:
    site = faults.lockers
    ha = faults.ha
    totals = {"tried": 0, "acked": 0, "in_flight": 0, "lost": 0, "duplicated": 0}
    for kill in range(1, KILLS + 1):
        devices = {bank: site.device_id(bank) for bank in (NORTH, LAKE)}
        free = [
            (bank, number)
            for bank in (NORTH, LAKE)
            for number in site.compartments[bank]
            if site.loan_state(bank, number)["state"] == "available"
        ][:BURST_WORKERS]
        assert len(free) == BURST_WORKERS, free
        ledgers = [Ledger(bank, number) for bank, number in free]
        stop = threading.Event()
        workers = [
            threading.Thread(
                target=burst, args=(site, ledger, devices[ledger.bank], stop), daemon=True
            )
            for ledger in ledgers
        ]
        for worker in workers:
            worker.start()
        time.sleep(BURST_S)
        restart_s = site.process.kill_and_restart()  # the workers fail on the dead connection
        stop.set()
        for worker in workers:
            worker.join(30)
        ha.drop_connections()
        ha.wait_until_running()
        ha.wait_entry_loaded(site.entry_id)

        acked_ids = {r for ledger in ledgers for op, r, ok in ledger.ops if ok and op == "reserve"}
        stored_ids: list[str] = []
        for bank in (NORTH, LAKE):
            stored = site.stored(bank)
            stored_ids += [
                c["loan"]["reservation_id"]
                for c in stored["compartments"].values()
                if c.get("loan")
            ]
            stored_ids += [loan["reservation_id"] for loan in stored.get("history", [])]
        figures = {
            "tried": sum(len(ledger.ops) for ledger in ledgers),
            "acked": sum(1 for ledger in ledgers for _, _, ok in ledger.ops if ok),
            "in_flight": sum(1 for ledger in ledgers if ledger.ops and not ledger.ops[-1][2]),
            "lost": sum(
                not ledger.check(
                    site.stored(ledger.bank)["compartments"][str(ledger.compartment)]["loan"],
                    acked_ids,
                )
                for ledger in ledgers
            ),
            "duplicated": len(stored_ids) - len(set(stored_ids)),
        }
        for key, value in figures.items():
            totals[key] += value
        print(f"\nSIGKILL {kill}: {figures}; hass back after {restart_s:.1f} s")
        assert figures["acked"] > 0, figures
        assert (figures["lost"], figures["duplicated"]) == (0, 0), figures
        for ledger in ledgers:
            shown = ha.wait_for_state(
                site.entity_id(ledger.bank, "loan_state", ledger.compartment),
                lambda state: state in ("reserved", "available"),
            )
            loan = site.stored(ledger.bank)["compartments"][str(ledger.compartment)]["loan"]
            assert shown == ("reserved" if loan else "available"), (ledger, shown)
            if loan:  # free it for the next round
                ha.call_service(
                    "city_ops",
                    "cancel",
                    {"device_id": devices[ledger.bank], "compartment": ledger.compartment},
                )
    print(
        f"\nSIGKILL during bursts, {KILLS} kills: {totals['tried']} reserve/cancel calls tried, "
        f"{totals['acked']} acknowledged, {totals['in_flight']} in flight at a kill, "
        f"{totals['lost']} acknowledged lost, {totals['duplicated']} duplicated"
    )


# -- 5. nothing lost right after "loaded" -------------------------------------------------------


RELOADS = 5


def test_messages_sent_right_after_loaded_are_handled(faults: FaultSite) -> None:
    """Reload the site, and the moment it is loaded again a keypad and a bin send something.

    The reload call returns once the entry is loaded. Before the site waited for the broker's
    SUBACKs, for about half a second after that the broker had no subscription and dropped
    both messages without a trace.
    """
    site = faults.lockers
    ha = faults.ha
    bin_device = site.device_id(BIN)
    fill_level = str(
        ha.find_entities(translation_key="fill_level", device_id=bin_device)[0]["entity_id"]
    )
    tried = lost = 0
    for reload in range(RELOADS):
        level_before = (ha.state(fill_level) or {}).get("state")
        status, body = ha.send("POST", f"/api/config/config_entries/entry/{site.entry_id}/reload")
        assert status == 200, body[:300]
        states = [
            e["state"] for e in ha.config_entries("city_ops") if e["entry_id"] == site.entry_id
        ]
        assert states == ["loaded"], states
        # An entry that is no code (never counted against the keypad) is rejected as bad_code,
        # which proves it arrived; the bin's uplink moves its fill level.
        site.publish(f"{NATIVE_BASE}/{site.devices[NORTH]}/keypad", {"code": "not a code"})
        site.publish(
            "v3/fault-app@ttn/devices/fault-bin-1/up",
            {
                "end_device_ids": {"device_id": "fault-bin-1"},
                "uplink_message": {"decoded_payload": {"distance": 300 + 20 * reload}},
            },
        )
        tried += 2
        deadline = time.monotonic() + 10
        keypad_heard = bin_heard = False
        while time.monotonic() < deadline and not (keypad_heard and bin_heard):
            # Counters start again with each load: this is what the site took in since.
            rejected = site.diagnostics()["messages"]["rejected"]
            keypad_heard = int(rejected.get("bad_code", 0)) >= 1
            level = (ha.state(fill_level) or {}).get("state")
            bin_heard = level not in (level_before, None, "unknown", "unavailable")
            time.sleep(0.2)
        lost += (not keypad_heard) + (not bin_heard)
    print(f"\nright after loaded: {RELOADS} reloads, {tried} messages sent, {lost} lost")
    assert lost == 0


# -- 6. Zigbee2MQTT says a luminaire is gone, and back --------------------------------------------


def test_zigbee2mqtt_offline_makes_the_mast_unavailable_and_online_brings_it_back(
    faults: FaultSite,
) -> None:
    site = faults.lockers
    ha = faults.ha
    topic = f"zigbee2mqtt/{MAST_DEVICE}/availability"
    site.publish(f"zigbee2mqtt/{MAST_DEVICE}", {"state": "ON", "brightness": 120})
    ha.wait_for_state(faults.light, lambda state: state in ("on", "off"))
    went = time.monotonic()
    site.publish(topic, {"state": "offline"})
    ha.wait_for_state(faults.light, "unavailable", timeout=15)
    offline_s = time.monotonic() - went
    came = time.monotonic()
    site.publish(topic, {"state": "online"})
    back = ha.wait_for_state(faults.light, lambda state: state != "unavailable", timeout=15)
    online_s = time.monotonic() - came
    lines = our_log_lines(site)
    print(
        f"\nZigbee2MQTT availability: unavailable {offline_s:.1f} s after offline, "
        f"{back} {online_s:.1f} s after online"
    )
    assert back in ("on", "off")
    assert sum(MAST in line and "unavailable" in line for line in lines) >= 1
