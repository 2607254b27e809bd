"""Simulated lending lockers: the locker banks' controllers and the residents who borrow from them.

The banks come from the asset file (config/demo_park.geojson, kind `locker_bank`). Each is a
controller speaking City Operations' native MQTT schema (docs/lockers-contract.md): it
publishes every compartment's state, retained, on `city_ops/<bank>/compartment/<n>/state`,
obeys `{"lock": "UNLOCK"}` / `{"lock": "LOCK"}` on `city_ops/<bank>/compartment/<n>/set`, and
passes on what is typed at its keypad on `city_ops/<bank>/keypad`.

Residents reserve an item through Home Assistant's `city_ops.reserve` action (REST, with
`?return_response`), walk to the bank, type the code, open the door, take the item and close
the door; later they type the return code and put the item back. One of them mistypes the
code once, one keeps the item past a two-minute loan (the loan turns overdue), and one leaves
the door open for a while after collecting. Then they start again.

Codes live only in a resident's booking and on the keypad topic: nothing here prints or logs
them (a booking's repr leaves them out).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
import json
from pathlib import Path
import random
import threading
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .homeassistant import HomeAssistantClient, HomeAssistantError
from .park import NATIVE_BASE, Message, disconnect

WALK_S = 8.0  # from reserving at home to typing the code at the bank
HANDLE_S = 2.0  # opening the door, taking or putting back the item, closing it
UNLOCK_TIMEOUT_S = 30.0  # a compartment that does not open by then is given up on
LOAN_S = 90.0  # how long a resident keeps the item (well inside the bank's loan period)
SHORT_LOAN_MIN = 2  # the loan period the overdue resident asks for
OVERDUE_RETURN_S = 300.0  # the overdue resident brings the item back after this long
DOOR_LEFT_OPEN_S = 150.0  # past the demo automation's two minutes for an open door
START_EVERY_S = 15.0  # the residents' first reservations, one after the other
PAUSE_S = 60.0  # between a resident's return and the next reservation
RETRY_S = 30.0  # after a reservation that failed (nothing free, Home Assistant not ready)
POLL_S = 0.2


class Role(StrEnum):
    """How a resident deals with the lockers."""

    PROMPT = "prompt"  # collects and returns in time
    MISTYPES = "mistypes"  # types a wrong code once, then the right one
    OVERDUE = "overdue"  # keeps the item past a short loan
    DOOR_OPEN = "door_open"  # leaves the door open after collecting


@dataclass(slots=True)
class SimulatedCompartment:
    """One compartment: its door, its lock and whether its item is inside."""

    number: int
    item: str
    item_type: str
    door_open: bool = False
    locked: bool = True
    item_present: bool = True
    lock_when_closed: bool = False  # LOCK came while the door was open: the bolt waits

    def state(self) -> dict[str, Any]:
        """The controller's report: every field, not only the changed one."""
        return {
            "door": "open" if self.door_open else "closed",
            "locked": self.locked,
            "item_present": self.item_present,
        }


@dataclass(slots=True)
class SimulatedBank:
    """One locker bank's controller."""

    name: str
    device: str
    compartments: dict[int, SimulatedCompartment]

    def topic(self, number: int, leaf: str) -> str:
        """Return a compartment's topic (`state` or `set`)."""
        return f"{NATIVE_BASE}/{self.device}/compartment/{number}/{leaf}"

    def report(self, number: int) -> Message:
        """Return a compartment's state message."""
        return Message(self.topic(number, "state"), self.compartments[number].state())

    def reports(self) -> list[Message]:
        """Return every compartment's state message, in number order."""
        return [self.report(number) for number in sorted(self.compartments)]

    def keypad(self, code: str) -> Message:
        """Return what the keypad sends for typed digits."""
        return Message(f"{NATIVE_BASE}/{self.device}/keypad", {"code": code})

    def command(self, number: int, wanted: Any) -> Message | None:
        """Apply a `/set` command; return the state report, None for a command ignored."""
        compartment = self.compartments.get(number)
        if compartment is None or not isinstance(wanted, dict):
            return None
        match str(wanted.get("lock", "")).upper():
            case "UNLOCK":
                compartment.locked = False
                compartment.lock_when_closed = False
            case "LOCK" if compartment.door_open:
                compartment.lock_when_closed = True
                return None
            case "LOCK":
                compartment.locked = True
            case _:
                return None
        return self.report(number)

    def door(self, number: int, *, open_: bool) -> Message:
        """A resident opens or closes a compartment's door."""
        compartment = self.compartments[number]
        compartment.door_open = open_
        if not open_ and compartment.lock_when_closed:
            compartment.locked = True
            compartment.lock_when_closed = False
        return self.report(number)

    def item(self, number: int, *, present: bool) -> Message:
        """A resident takes the item out or puts it back."""
        self.compartments[number].item_present = present
        return self.report(number)


def load_banks(path: Path) -> list[SimulatedBank]:
    """Read the native locker banks of an asset file; every compartment starts closed and full."""
    collection = json.loads(path.read_text(encoding="utf-8"))
    banks: list[SimulatedBank] = []
    for feature in collection.get("features", []):
        props = feature.get("properties", {})
        source = props.get("source") or {}
        if props.get("kind") != "locker_bank" or source.get("kind") != "native":
            continue
        compartments = {
            int(c["number"]): SimulatedCompartment(
                int(c["number"]), str(c["item"]), str(c["item_type"])
            )
            for c in props.get("compartments", [])
        }
        banks.append(SimulatedBank(str(props["name"]), str(source["device"]), compartments))
    return banks


@dataclass(frozen=True, slots=True)
class Booking:
    """What `city_ops.reserve` answered; the codes stay out of the repr."""

    reservation_id: str
    compartment: int
    item: str
    code: str = field(repr=False)
    return_code: str = field(repr=False)

    @classmethod
    def from_response(cls, response: Any) -> Booking:
        """Read the reserve action's response data."""
        if not isinstance(response, dict):
            raise HomeAssistantError("city_ops.reserve returned no response data")
        try:
            return cls(
                reservation_id=str(response["reservation_id"]),
                compartment=int(response["compartment"]),
                item=str(response["item"]),
                code=str(response["code"]),
                return_code=str(response["return_code"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            # Name the missing field only: the response holds codes.
            raise HomeAssistantError(f"city_ops.reserve response lacks {err}") from None


class LockerDesk(Protocol):
    """Where residents reserve: Home Assistant in the demo, a fake in a check."""

    def bank_device_id(self, bank: SimulatedBank) -> str:
        """Return the device id of a bank's device."""
        ...

    def reserve(
        self, device_id: str, item_type: str, borrower: str, loan_period_min: int | None
    ) -> Booking:
        """Reserve an item of a type at a bank."""
        ...

    def close(self) -> None:
        """Release what the desk holds."""
        ...


class HomeAssistantDesk:
    """Reserving through Home Assistant's REST API, as a city's booking web page would."""

    def __init__(self, client: HomeAssistantClient) -> None:
        """Use client (owned by this desk from now on; not shared between threads)."""
        self.client = client

    def bank_device_id(self, bank: SimulatedBank) -> str:
        """Ask HA's template endpoint for the bank's device, by the bank's name."""
        # Entity ids follow the installation's language; the device's name does not.
        template = (
            "{{ integration_entities('city_ops') | map('device_id') | reject('none') | unique"
            f" | select('is_device_attr', 'name', {json.dumps(bank.name)}) | first"
            " | default('') }}"
        )
        status, body = self.client.send("POST", "/api/template", json_data={"template": template})
        if status != 200 or not body.strip():
            raise HomeAssistantError(f"no device for {bank.name} yet (HTTP {status})")
        return body.strip()

    def reserve(
        self, device_id: str, item_type: str, borrower: str, loan_period_min: int | None
    ) -> Booking:
        """Call `city_ops.reserve` with `?return_response`."""
        data: dict[str, Any] = {
            "device_id": device_id,
            "item_type": item_type,
            "borrower": borrower,
        }
        if loan_period_min is not None:
            data["loan_period"] = loan_period_min
        status, body = self.client.send(
            "POST", "/api/services/city_ops/reserve?return_response", json_data=data
        )
        if status != 200:
            # The body of a refusal carries no code; keep it short all the same.
            raise HomeAssistantError(f"city_ops.reserve refused (HTTP {status}): {body[:200]}")
        return Booking.from_response(json.loads(body).get("service_response"))

    def close(self) -> None:
        """Close the client."""
        self.client.close()


class LockerBanks:
    """Every bank's controller on one MQTT connection; residents act on them from their threads.

    Commands arrive on paho's network thread and residents change doors and items on theirs:
    whoever changes a bank publishes its report under `lock`, so reports leave in order.
    """

    def __init__(self, banks: list[SimulatedBank]) -> None:
        """Simulate the given banks."""
        self.banks = {bank.device: bank for bank in banks}
        self.lock = threading.RLock()
        self.client: mqtt.Client | None = None

    @classmethod
    def from_asset_file(cls, path: Path) -> LockerBanks:
        """Simulate the native locker banks of an asset file."""
        return cls(load_banks(path))

    def command(self, topic: str, payload: bytes) -> Message | None:
        """Apply `city_ops/<bank>/compartment/<n>/set`; return the report to publish."""
        parts = topic.split("/")
        if len(parts) != 5 or parts[0] != NATIVE_BASE or parts[2:5:2] != ["compartment", "set"]:
            return None
        bank = self.banks.get(parts[1])
        if bank is None or not parts[3].isdigit():
            return None
        try:
            wanted = json.loads(payload)
        except ValueError:
            return None  # a controller ignores what it cannot read
        with self.lock:
            return bank.command(int(parts[3]), wanted)

    def publish(self, message: Message) -> None:
        """Send a message; compartment states are retained, as the controllers keep them."""
        if self.client is None:
            raise RuntimeError("the locker banks are not connected")
        retain = message.topic.endswith("/state")
        self.client.publish(message.topic, json.dumps(message.payload), qos=1, retain=retain)

    def act(self, change: Callable[[], Message]) -> None:
        """Change a bank (a resident's doing) and publish its report, in order."""
        with self.lock:
            self.publish(change())

    def connect(self, host: str, port: int) -> mqtt.Client:
        """Connect, publish every compartment's state (retained) and obey commands."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"city-ops-lockers-{port}")
        subscribed = threading.Event()

        def on_connect(
            client: mqtt.Client, _userdata: Any, _flags: Any, _reason: Any, _props: Any
        ) -> None:
            # On every (re)connect: the broker keeps no session for us.
            client.subscribe(f"{NATIVE_BASE}/+/compartment/+/set", qos=1)
            with self.lock:
                for bank in self.banks.values():
                    for message in bank.reports():
                        self.publish(message)

        def on_message(client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
            with self.lock:
                answer = self.command(message.topic, message.payload)
                if answer is not None:
                    self.publish(answer)  # no waiting: this is paho's network thread

        self.client = client
        client.on_connect = on_connect
        client.on_subscribe = lambda *_: subscribed.set()
        client.on_message = on_message
        client.connect(host, port, keepalive=30)
        client.loop_start()
        if not subscribed.wait(10):
            disconnect(client)
            self.client = None
            raise TimeoutError(f"the locker banks could not subscribe on {host}:{port}")
        return client

    def disconnect(self) -> None:
        """Disconnect (ends paho's network thread); safe to call more than once."""
        if self.client is not None:
            disconnect(self.client)
            self.client = None

    def unlocked(self, bank: SimulatedBank, number: int) -> bool:
        """Return whether a compartment's lock is open."""
        with self.lock:
            return not bank.compartments[number].locked


@dataclass(slots=True)
class Resident:
    """Someone who borrows one kind of item from one bank, again and again."""

    borrower: str  # the opaque reference a booking page would pass; never a person's name
    role: Role
    bank: SimulatedBank
    item_type: str
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def run(
        self,
        lockers: LockerBanks,
        desk: LockerDesk,
        stop: threading.Event,
        log: Callable[[str], None],
        start_after: float = 0.0,
    ) -> None:
        """Borrow and return until stop is set."""
        if stop.wait(start_after):
            return
        device_id = ""
        while not device_id and not stop.is_set():
            try:
                device_id = desk.bank_device_id(self.bank)
            except HomeAssistantError:
                stop.wait(RETRY_S)
        while not stop.is_set():
            done = self.borrow_and_return(lockers, desk, device_id, stop, log)
            stop.wait(PAUSE_S if done else RETRY_S)

    def borrow_and_return(
        self,
        lockers: LockerBanks,
        desk: LockerDesk,
        device_id: str,
        stop: threading.Event,
        log: Callable[[str], None],
    ) -> bool:
        """One loan from reservation to return; False when it could not go through."""
        loan_period = SHORT_LOAN_MIN if self.role is Role.OVERDUE else None
        try:
            booking = desk.reserve(device_id, self.item_type, self.borrower, loan_period)
        except HomeAssistantError as err:
            log(f"{self.borrower}: no reservation at {self.bank.name}: {_first_line(err)}")
            return False
        number, bank = booking.compartment, self.bank
        where = f"{bank.name} compartment {number}"
        log(f"{self.borrower} reserved the {booking.item} in {where}")
        if stop.wait(WALK_S):
            return True
        if self.role is Role.MISTYPES:
            lockers.act(lambda: bank.keypad(self.wrong(booking.code)))
            log(f"{self.borrower} mistyped the code at {bank.name}")
            if stop.wait(HANDLE_S * 2):
                return True
        lockers.act(lambda: bank.keypad(booking.code))
        if not self.wait_unlocked(lockers, number, stop):
            log(f"{self.borrower}: {where} did not open; the reservation will expire")
            return False
        self.use_door(lockers, number, present=False, stop=stop)
        log(f"{self.borrower} collected the {booking.item} from {where}")

        keep = OVERDUE_RETURN_S if self.role is Role.OVERDUE else LOAN_S
        if stop.wait(keep):
            return True
        lockers.act(lambda: bank.keypad(booking.return_code))
        if not self.wait_unlocked(lockers, number, stop):
            log(f"{self.borrower}: {where} did not open for the return; staff will help")
            return False
        self.use_door(lockers, number, present=True, stop=stop)
        log(f"{self.borrower} returned the {booking.item} to {where}")
        return True

    def use_door(
        self, lockers: LockerBanks, number: int, *, present: bool, stop: threading.Event
    ) -> None:
        """Open the door, take the item out or put it back, close the door."""
        bank = self.bank
        lockers.act(lambda: bank.door(number, open_=True))
        stop.wait(HANDLE_S)
        lockers.act(lambda: bank.item(number, present=present))
        left_open = self.role is Role.DOOR_OPEN and not present
        stop.wait(DOOR_LEFT_OPEN_S if left_open else HANDLE_S)
        lockers.act(lambda: bank.door(number, open_=False))

    def wait_unlocked(self, lockers: LockerBanks, number: int, stop: threading.Event) -> bool:
        """Wait until Home Assistant had the compartment unlocked."""
        for _ in range(int(UNLOCK_TIMEOUT_S / POLL_S)):
            if lockers.unlocked(self.bank, number):
                return True
            if stop.wait(POLL_S):
                return False
        return False

    def wrong(self, code: str) -> str:
        """Digits of the code's length that are not the code."""
        width = len(code)
        value = int(code) if code.isdigit() else 0
        return f"{(value + self.rng.randrange(1, 10**width)) % 10**width:0{width}d}"


def residents(banks: list[SimulatedBank], seed: int = 7) -> list[Resident]:
    """One resident per role, spread over the banks and over each bank's kinds of items."""
    found: list[Resident] = []
    if not banks:
        return found
    for index, role in enumerate(Role):
        bank = banks[index % len(banks)]
        kinds = list(dict.fromkeys(c.item_type for c in bank.compartments.values()))
        kind = kinds[(index // len(banks)) % len(kinds)]
        found.append(
            Resident(f"resident-{index + 1}", role, bank, kind, random.Random(seed + index))
        )
    return found


def start_residents(
    lockers: LockerBanks,
    desk: Callable[[], LockerDesk],
    stop: threading.Event,
    log: Callable[[str], None],
) -> list[threading.Thread]:
    """Start each resident on a thread of its own, with a desk of its own; return the threads."""

    def live(resident: Resident, start_after: float) -> None:
        own = desk()
        try:
            resident.run(lockers, own, stop, log, start_after)
        except Exception as err:  # the demo goes on without this resident
            log(f"{resident.borrower} stopped: {type(err).__name__}: {_first_line(err)}")
        finally:
            own.close()

    threads = []
    for index, resident in enumerate(residents(list(lockers.banks.values()))):
        thread = threading.Thread(
            target=live,
            args=(resident, index * START_EVERY_S),
            name=f"city-ops-{resident.borrower}",
            daemon=True,
        )
        thread.start()
        threads.append(thread)
    return threads


def _first_line(err: BaseException) -> str:
    """The first line of an error, short (the rest is a log tail)."""
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__
