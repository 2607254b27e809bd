"""Fault injection on the real parts: hostile users, a broker that goes away, floods, SIGKILL.

The module runs the locker site of test_lockers_e2e (its `lockers` fixture: a mosquitto and a
hass of this module's own) plus one mast and one TTN container, then:

- a read-only user and a non-admin user call every service and entity action over REST;
- mosquitto is stopped while a borrower types a code and an operator switches a lamp, and
  started again: the calls fail with the translated error, nothing is used up, and the same
  code opens after reconnecting; a keypad entry queued during the outage is refused as stale;
- undecodable messages, each on a TTN device topic of its own, flood the site: the log grows
  by a bounded number of lines while diagnostics count every message;
- hass is SIGKILLed in the middle of bursts of reserve/cancel calls: every acknowledged
  booking is on disk after the restart, none twice.

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

from demo.homeassistant import HomeAssistantClient

from .conftest import MqttRecorder
from .test_containers_e2e import wait_for
from .test_lockers_e2e import (
    LAKE,
    LOCK,
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


def test_read_only_and_non_admin_users_against_every_service_and_action(
    faults: FaultSite,
) -> None:
    """401 for every refused call, before anything is sent or changed."""
    site = faults.lockers
    ha = faults.ha
    north = site.device_id(NORTH)
    admin_booking = site.reserve(NORTH, 1, "e2e-fault-1")  # something to cancel or extend
    tokens = {
        "read-only": create_user(ha, "Reader", "system-read-only"),
        "operator": create_user(ha, "Operator", "system-users"),
    }
    lock_2 = site.entity_id(NORTH, "compartment", 2)
    calls: list[tuple[str, str, dict[str, Any], set[str]]] = [
        # (domain, service, data, the roles allowed)
        ("city_ops", "reserve", {"device_id": north, "compartment": 3}, {"operator"}),
        ("city_ops", "extend", {"device_id": north, "compartment": 1, "minutes": 5}, {"operator"}),
        ("city_ops", "release_code", {"device_id": north, "code": "000000"}, {"operator"}),
        ("city_ops", "boost", {"entity_id": faults.light}, {"operator"}),
        ("light", "turn_on", {"entity_id": faults.light, "brightness": 200}, {"operator"}),
        ("light", "turn_off", {"entity_id": faults.light}, {"operator"}),
        ("lock", "lock", {"entity_id": lock_2}, {"operator"}),
        ("lock", "unlock", {"entity_id": lock_2}, set()),
        ("city_ops", "open_for_maintenance", {"device_id": north, "compartment": 2}, set()),
        ("city_ops", "mark_returned", {"device_id": north, "compartment": 1}, set()),
        ("city_ops", "set_out_of_service", {"device_id": north, "compartment": 4}, set()),
        (
            "city_ops",
            "export_assets",
            {"config_entry_id": site.entry_id, "path": "x.geojson"},
            set(),
        ),
        (
            "city_ops",
            "import_assets",
            {"config_entry_id": site.entry_id, "path": EXTRAS_FILE},
            set(),
        ),
        ("city_ops", "cancel", {"device_id": north, "compartment": 1}, {"operator"}),
    ]
    tried = refused = allowed = 0
    for role in ("read-only", "operator"):
        for domain, service, data, roles in calls:
            states = {n: site.loan_state(NORTH, n)["state"] for n in site.compartments[NORTH]}
            started = time.monotonic()
            path = f"/api/services/{domain}/{service}"
            if service == "reserve":
                path += "?return_response"
            status, body = ha.send("POST", path, json_data=data, token=tokens[role])
            tried += 1
            if role in roles:
                allowed += 1
                # Past the check; the lending rules may still refuse (a wrong code: HTTP 400).
                assert status in (200, 400), (role, service, status, body[:300])
                continue
            refused += 1
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
    print(f"\nroles: {tried} calls tried, {refused} refused with 401, {allowed} let through")
    assert (tried, refused) == (2 * len(calls), len(calls) + 6)


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
