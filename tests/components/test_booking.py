"""The residents' booking page and the availability feed inside Home Assistant (no login).

Requests go through Home Assistant's own HTTP app (aiohttp test client, no auth), bookings
through the site's real lending model on the mocked MQTT; limits, forms, headers and the feed
are checked at the HTTP boundary a browser or a script would meet.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import timedelta
import hashlib
import json
import logging
from pathlib import Path
import re
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import jsonschema
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MqttMockHAClient

from custom_components.city_ops.booking import (
    MAX_KEYS,
    RateLimit,
    pickup_choices,
    station_id,
)
from custom_components.city_ops.booking_page import (
    ITEM_NAMES,
    STYLE,
    TEXTS,
    pick_language,
)
from custom_components.city_ops.diagnostics import async_get_config_entry_diagnostics

from .lockers import bank_device, call, loan_state, unlocks
from .test_locker_services import NORTH, collect, keypad, stocked

PAGE = "/city_ops/book/stadtpark"
FEED = f"{PAGE}/feed"
SCHEMA = json.loads(
    (Path(__file__).parents[2] / "docs" / "availability-feed.schema.json").read_text("utf-8")
)
type Client = Callable[[], Awaitable[TestClient[Any, Any]]]
ON = {"booking_page": True, "availability_feed": True}


@pytest.fixture
def options() -> dict[str, Any]:
    """The site's booking options for a test (the page on)."""
    return dict(ON)


@pytest.fixture
async def site(
    hass: HomeAssistant,
    locker_site: MockConfigEntry,
    mqtt_mock: MqttMockHAClient,
    options: dict[str, Any],
) -> MockConfigEntry:
    """The locker site with the test's options, every compartment stocked."""
    locker_site.add_to_hass(hass)
    hass.config_entries.async_update_entry(locker_site, options={**locker_site.options, **options})
    assert await hass.config_entries.async_setup(locker_site.entry_id)
    await hass.async_block_till_done()
    await stocked(hass)
    return locker_site


class Browser:
    """A resident's browser: keeps the cookie, reads the form token from each page."""

    def __init__(self, client: TestClient[Any, Any], language: str = "de") -> None:
        self.client = client
        self.headers = {"Accept-Language": language}
        self.csrf = ""
        self.responses: list[tuple[str, int, str]] = []

    async def _read(self, label: str, response: ClientResponse) -> str:
        body = await response.text()
        self.responses.append((label, response.status, body))
        found = re.search(r'name="csrf" value="([^"]+)"', body)
        if found:
            self.csrf = found.group(1)
        return body

    async def get(self, path: str = PAGE) -> tuple[ClientResponse, str]:
        response = await self.client.get(path, headers=self.headers)
        return response, await self._read(f"GET {path}", response)

    async def post(self, path: str, **form: str) -> tuple[ClientResponse, str]:
        data = {"csrf": self.csrf, **form}
        response = await self.client.post(path, data=data, headers=self.headers)
        return response, await self._read(f"POST {path}", response)

    async def reserve(self, contact: str = "Anna Muster", **form: str) -> tuple[int, str]:
        """Open the page, choose a walker at Locker North, send the form."""
        _, page = await self.get()
        pickup = re.findall(r'<select id="pickup".*?</select>', page, re.S)[0]
        first_time = re.findall(r'<option value="(\d+)"', pickup)[0]
        fields = {
            "offer": "locker-north/walker",
            "pickup": first_time,
            "loan": "120",
            "contact": contact,
            "lang": "de",
            **form,
        }
        response, body = await self.post(f"{PAGE}/reserve", **fields)
        return response.status, body


def codes_in(body: str) -> list[str]:
    """The codes a result page shows (digits with a narrow space between the halves)."""
    return [a + b for a, b in re.findall(r"<strong[^>]*>(\d{3})&#8239;(\d{3})</strong>", body)]


def manage_path(body: str) -> str:
    """The path of the result page's manage link (shown in full, with scheme and host)."""
    found = re.search(r'id="manage" href="(http://127\.0\.0\.1:\d+)(/[^"?]+)', body)
    assert found, body
    return found.group(2)


async def browser(hass_client_no_auth: Client, language: str = "de") -> Browser:
    return Browser(await hass_client_no_auth(), language)


# -- the page --------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"booking_page": False, "availability_feed": False}])
async def test_page_and_feed_are_off_unless_switched_on(
    hass: HomeAssistant, site: MockConfigEntry, hass_client_no_auth: Client
) -> None:
    client = await hass_client_no_auth()
    for path in (PAGE, f"{PAGE}/booking/{'a' * 43}", f"{FEED}/station_status.json"):
        response = await client.get(path)
        assert response.status == 404, path
        assert "Stadtpark" not in await response.text()
    response = await client.post(f"{PAGE}/reserve", data={"contact": "x"})
    assert response.status == 404
    assert (await client.get("/city_ops/book/elsewhere")).status == 404


async def test_resident_reserves_reads_codes_once_and_the_keypad_opens_that_compartment(
    hass: HomeAssistant,
    site: MockConfigEntry,
    hass_client_no_auth: Client,
    mqtt_mock: MqttMockHAClient,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    resident = await browser(hass_client_no_auth)
    response, page = await resident.get()
    assert response.status == 200
    assert '<html lang="de">' in page
    assert "Rollator" in page
    assert "Locker North" in page
    assert "2 frei" in page
    assert 'href="geo:53.70100,10.00100' in page
    # Nothing of Home Assistant on the page: no entry, subentry or device ids.
    device_id = bank_device(hass, site.entry_id, "Locker North")
    for secret_id in (site.entry_id, device_id, *site.subentries):
        assert secret_id not in page
    status, body = await resident.reserve(contact="Anna Muster")
    assert status == 201, body
    token = manage_path(body).rsplit("/", 1)[1]
    # Home Assistant's whole log so far (the page's requests, the booking, its storage).
    for secret in (*codes_in(body), "Anna", "anna", token):
        assert secret not in caplog.text
    codes = codes_in(body)
    assert len(codes) == 2, "two codes"
    assert codes[0] != codes[1], "two different codes"
    assert "Fach 1" in body
    assert "Abholcode" in body
    assert "Rückgabecode" in body
    assert loan_state(hass, NORTH, 1) == "reserved"

    # An ordinary reservation: the operator's services see and refuse like for any other.
    stored = hass_storage[f"city_ops.{site.entry_id}"]["data"]["locker_banks"]
    loan = next(iter(stored.values()))["compartments"]["1"]["loan"]
    assert loan["borrower"].startswith("web-")
    dump = json.dumps(hass_storage)
    assert "Anna" not in dump, "the contact is stored in the clear"
    assert "anna" not in dump, "the contact is stored in the clear"
    assert token not in dump, "the manage link's token is stored"
    links = hass_storage[f"city_ops.booking.{site.entry_id}"]["data"]["links"]
    assert list(links) == [hashlib.sha256(token.encode()).hexdigest()]
    for code in codes:
        assert code not in dump

    # Only the pickup code opens, and only compartment 1.
    mqtt_mock.async_publish.reset_mock()
    keypad(hass, "locker-north", codes[0])
    await hass.async_block_till_done()
    assert unlocks(mqtt_mock) == ["city_ops/locker-north/compartment/1/set"]

    # The manage page never shows a code again; nor does the booking page.
    _, manage = await resident.get(manage_path(body))
    _, again = await resident.get()
    for shown in (manage, again):
        assert not any(code in shown for code in codes)
    # Since then (the keypad's own MQTT message, logged by the test harness, left out).
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("custom_components")]
    for secret in (*codes, "Anna", token):
        assert not any(secret in line for line in ours)


async def test_language_follows_the_browser_and_the_switch(
    hass: HomeAssistant, site: MockConfigEntry, hass_client_no_auth: Client
) -> None:
    english = await browser(hass_client_no_auth, "en-GB,en;q=0.9,de;q=0.5")
    _, page = await english.get()
    assert '<html lang="en">' in page
    assert "Walker" in page
    assert 'href="?lang=de"' in page
    _, page = await english.get(f"{PAGE}?lang=de")
    assert '<html lang="de">' in page
    assert "Rollator" in page
    assert pick_language(None, "fr-CH, de;q=0.7, en;q=0.8") == "en"
    assert pick_language(None, "da, de-AT;q=0.9") == "de"
    assert pick_language(None, "en;q=0, de;q=bogus") == "en"
    assert pick_language("xx", None) == "en"


def test_every_text_in_both_languages() -> None:
    assert set(TEXTS["de"]) == set(TEXTS["en"])
    assert set(ITEM_NAMES["de"]) == set(ITEM_NAMES["en"])
    for key in TEXTS["en"]:
        placeholders = {lang: sorted(re.findall(r"{(\w+)}", TEXTS[lang][key])) for lang in TEXTS}
        assert placeholders["de"] == placeholders["en"], key


async def test_security_headers_on_every_page(
    hass: HomeAssistant, site: MockConfigEntry, hass_client_no_auth: Client
) -> None:
    resident = await browser(hass_client_no_auth)
    page_response, page = await resident.get()
    status, body = await resident.reserve()
    assert status == 201
    manage_response, _ = await resident.get(manage_path(body))
    result_headers = await resident.client.get(PAGE)  # headers of a plain GET again
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    assert f"<style>{STYLE}</style>" in page
    for response in (page_response, manage_response, result_headers):
        headers = response.headers
        policy = headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert f"style-src 'sha256-{digest}'" in policy
        assert "unsafe-inline" not in policy
        assert "script-src" not in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Cache-Control"] == "no-store"
    assert "<script" not in page
    cookie = page_response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/city_ops/book/" in cookie
    # The result page (the one with codes) is never stored by a browser or a proxy.
    reserve = [r for r in resident.responses if r[0].startswith("POST")]
    assert reserve
    assert reserve[-1][1] == 201


async def test_forms_need_the_cookie_a_fresh_token_and_are_sent_once(
    hass: HomeAssistant, site: MockConfigEntry, hass_client_no_auth: Client
) -> None:
    resident = await browser(hass_client_no_auth)
    await resident.get()
    token = resident.csrf
    # Another browser (no cookie of ours) with a token it copied: refused.
    stranger = await browser(hass_client_no_auth)
    stranger.csrf = token
    response, body = await stranger.post(
        f"{PAGE}/reserve", offer="locker-north/walker", pickup="0", loan="60", contact="abc"
    )
    assert response.status == 403
    assert "veraltet" in body
    # A forged token: refused.
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    resident.csrf = forged
    response, _ = await resident.post(
        f"{PAGE}/reserve", offer="locker-north/walker", pickup="0", loan="60", contact="abc"
    )
    assert response.status == 403
    # The real one works once; sent again (a reload of the result page) it is refused.
    status, body = await resident.reserve()
    assert status == 201
    used = resident.csrf
    _, page = await resident.get()
    resident.csrf = used
    response, _ = await resident.post(
        f"{PAGE}/reserve", offer="locker-north/walker", pickup="1", loan="60", contact="abc"
    )
    assert response.status == 403
    assert loan_state(hass, NORTH, 2) == "available", "a replayed form booked again"
    # Without any form at all, or too large a one.
    response = await resident.client.post(f"{PAGE}/reserve", data={"x": "y" * 5000})
    assert response.status == 403
    assert "csrf" in page


async def test_a_token_runs_out(
    hass: HomeAssistant,
    site: MockConfigEntry,
    hass_client_no_auth: Client,
    freezer: FrozenDateTimeFactory,
) -> None:
    resident = await browser(hass_client_no_auth)
    await resident.get()
    freezer.tick(timedelta(hours=3))
    response, body = await resident.post(
        f"{PAGE}/reserve", offer="locker-north/walker", pickup="1", loan="60", contact="abc"
    )
    assert response.status == 403
    assert "veraltet" in body


@pytest.mark.parametrize("options", [{**ON, "booking_per_address_h": 3}])
async def test_rate_limit_per_client_address(
    hass: HomeAssistant, site: MockConfigEntry, hass_client_no_auth: Client
) -> None:
    resident = await browser(hass_client_no_auth)
    statuses = []
    for number, offer in enumerate(["north/walker", "north/walker", "lake/walker", "north/walker"]):
        status, _ = await resident.reserve(contact=f"person {number}", offer=f"locker-{offer}")
        statuses.append(status)
    assert statuses == [201, 201, 201, 429]
    diagnostics = await async_get_config_entry_diagnostics(hass, site)
    assert diagnostics["booking_page"]["counters"]["refused_rate_address"] == 1


@pytest.mark.parametrize(
    "options", [{**ON, "booking_per_contact_day": 2, "booking_max_active": 10}]
)
async def test_rate_limit_per_contact(
    hass: HomeAssistant, site: MockConfigEntry, hass_client_no_auth: Client
) -> None:
    resident = await browser(hass_client_no_auth)
    first, _ = await resident.reserve(contact="Bernd 0171")
    second, _ = await resident.reserve(contact="bernd 0171 ")  # the same contact, typed again
    third, body = await resident.reserve(contact="BERND0171")
    assert (first, second, third) == (201, 201, 429)
    assert "Zu viele Anfragen" in body
    other, _ = await resident.reserve(contact="Clara", offer="locker-lake/walker")
    assert other == 201


@pytest.mark.parametrize("options", [{**ON, "booking_max_active": 1}])
async def test_cap_on_active_bookings_per_contact(
    hass: HomeAssistant, site: MockConfigEntry, hass_client_no_auth: Client
) -> None:
    resident = await browser(hass_client_no_auth)
    first, _ = await resident.reserve(contact="Dora Beispiel")
    second, body = await resident.reserve(contact="dora  beispiel")
    assert (first, second) == (201, 409)
    assert "1 laufende Reservierungen" in body
    assert loan_state(hass, NORTH, 2) == "available"
    other, _ = await resident.reserve(contact="Emil")
    assert other == 201
    assert loan_state(hass, NORTH, 2) == "reserved"


@pytest.mark.parametrize("options", [{**ON, "booking_access_key": "pilot-2026"}])
async def test_closed_to_all_but_the_pilot_group(
    hass: HomeAssistant, site: MockConfigEntry, hass_client_no_auth: Client
) -> None:
    resident = await browser(hass_client_no_auth)
    _, page = await resident.get()
    assert 'name="key"' in page
    without, _ = await resident.reserve()
    wrong, body = await resident.reserve(key="pilot-2025")
    assert (without, wrong) == (403, 403)
    assert "Zugangsschlüssel stimmt nicht" in body
    assert loan_state(hass, NORTH, 1) == "available"
    right, _ = await resident.reserve(key="pilot-2026")
    assert right == 201
    diagnostics = json.dumps(await async_get_config_entry_diagnostics(hass, site))
    assert "pilot-2026" not in diagnostics


async def test_cancel_through_the_link(
    hass: HomeAssistant, site: MockConfigEntry, hass_client_no_auth: Client
) -> None:
    resident = await browser(hass_client_no_auth)
    _, body = await resident.reserve()
    link = manage_path(body)
    response, manage = await resident.get(link)
    assert response.status == 200
    assert "Reservierung stornieren" in manage
    assert "Ausleihe verlängern" not in manage
    response, done = await resident.post(link, do="cancel", lang="de")
    assert response.status == 200
    assert "storniert" in done
    assert loan_state(hass, NORTH, 1) == "available"
    response, _ = await resident.get(link)
    assert response.status == 404
    # An unknown or malformed token: the same answer, nothing else.
    for token in ("x" * 43, "../../etc", "a" * 200):
        response, _ = await resident.get(f"{PAGE}/booking/{token}")
        assert response.status == 404


async def test_extend_a_loan_through_the_link(
    hass: HomeAssistant,
    site: MockConfigEntry,
    hass_client_no_auth: Client,
    mqtt_mock: MqttMockHAClient,
) -> None:
    resident = await browser(hass_client_no_auth)
    _, body = await resident.reserve()
    link = manage_path(body)
    pickup, _ = codes_in(body)
    # Collecting needs the code: a cancel now is refused by the lending rules.
    await collect(hass, mqtt_mock, "locker-north", 1, pickup)
    _, manage = await resident.get(link)
    assert "Ausleihe verlängern" in manage
    assert "Reservierung stornieren" not in manage
    response, _ = await resident.post(link, do="cancel", lang="de")
    assert response.status == 409
    assert loan_state(hass, NORTH, 1) == "on_loan"
    _, _ = await resident.get(link)
    before = hass.states.get("sensor.locker_north_compartment_1_loan_state").attributes
    response, done = await resident.post(link, do="extend", minutes="60", lang="de")
    assert response.status == 200, done
    after = hass.states.get("sensor.locker_north_compartment_1_loan_state").attributes
    assert dt_util.parse_datetime(after["loan_until"]) - dt_util.parse_datetime(
        before["loan_until"]
    ) == timedelta(minutes=60)
    # Past the bank's loan period (240 min) in one go: refused.
    _, _ = await resident.get(link)
    response, _ = await resident.post(link, do="extend", minutes="999", lang="de")
    assert response.status == 400


async def test_operators_cancel_page_bookings_like_any_other(
    hass: HomeAssistant, site: MockConfigEntry, hass_client_no_auth: Client
) -> None:
    resident = await browser(hass_client_no_auth)
    _, body = await resident.reserve()
    device_id = bank_device(hass, site.entry_id, "Locker North")
    await call(hass, "cancel", device_id=device_id, compartment=1)
    assert loan_state(hass, NORTH, 1) == "available"
    response, page = await resident.get(manage_path(body))
    assert response.status == 404
    assert "beendet" in page


async def test_a_refusal_of_the_lending_rules_is_shown_translated(
    hass: HomeAssistant, site: MockConfigEntry, hass_client_no_auth: Client
) -> None:
    resident = await browser(hass_client_no_auth)
    device_id = bank_device(hass, site.entry_id, "Locker North")
    for number in (1, 2):
        await call(hass, "reserve", device_id=device_id, compartment=number)
    # The page offered walkers a moment ago; now both are gone.
    _, page = await resident.get()
    assert "locker-north/walker" not in page
    response, body = await resident.post(
        f"{PAGE}/reserve",
        offer="locker-north/walker",
        pickup=str(int((dt_util.utcnow() + timedelta(minutes=30)).timestamp())),
        loan="60",
        contact="Frieda",
        lang="de",
    )
    assert response.status == 409
    assert 'role="alert"' in body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("offer", "nowhere/walker"),
        ("offer", "locker-north/piano"),
        ("loan", "9999"),
        ("loan", "x"),
        ("pickup", "99999999999999999999"),
        ("pickup", "1"),
        ("contact", "  a "),
    ],
)
async def test_bad_form_values_are_refused(
    hass: HomeAssistant,
    site: MockConfigEntry,
    hass_client_no_auth: Client,
    field: str,
    value: str,
) -> None:
    resident = await browser(hass_client_no_auth)
    status, body = await resident.reserve(**{field: value})
    assert status == 400
    assert 'role="alert"' in body
    assert loan_state(hass, NORTH, 1) == "available"


# -- the feed --------------------------------------------------------------------------------


def validate(document: dict[str, Any], name: str) -> None:
    jsonschema.validate(document, {**SCHEMA, "$ref": f"#/$defs/{name}"})


@pytest.mark.parametrize("options", [{"availability_feed": True}])
async def test_feed_matches_its_schema_and_caches(
    hass: HomeAssistant, site: MockConfigEntry, hass_client_no_auth: Client
) -> None:
    client = await hass_client_no_auth()
    assert (await client.get(PAGE)).status == 404, "the page stays off with the feed on"
    documents = {}
    for name in ("gbfs", "station_information", "station_status"):
        response = await client.get(f"{FEED}/{name}.json")
        assert response.status == 200
        assert response.headers["Cache-Control"] == "public, max-age=30"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        documents[name] = await response.json()
        validate(documents[name], name)
    stations = {s["station_id"]: s for s in documents["station_status"]["data"]["stations"]}
    assert stations["locker-north"]["num_items_available"] == 3
    assert {i["item_type"]: i["count"] for i in stations["locker-north"]["items_available"]} == {
        "walker": 2,
        "hand_cart": 1,
    }
    info = {s["station_id"]: s for s in documents["station_information"]["data"]["stations"]}
    assert info["locker-lake"]["capacity"] == 1
    assert (info["locker-north"]["lat"], info["locker-north"]["lon"]) == (53.701, 10.001)
    everything = json.dumps(documents)
    for secret_id in (site.entry_id, *site.subentries):
        assert secret_id not in everything

    # Unchanged: 304 for the ETag. A booking changes the status document.
    response = await client.get(f"{FEED}/station_status.json")
    tag = response.headers["ETag"]
    response = await client.get(f"{FEED}/station_status.json", headers={"If-None-Match": tag})
    assert response.status == 304
    await call(
        hass,
        "reserve",
        device_id=bank_device(hass, site.entry_id, "Locker North"),
        item_type="walker",
        borrower="x",
    )
    response = await client.get(f"{FEED}/station_status.json", headers={"If-None-Match": tag})
    assert response.status == 200
    document = await response.json()
    validate(document, "station_status")
    assert "x" not in {s.get("borrower") for s in document["data"]["stations"]}
    assert (await client.get(f"{FEED}/free_bike_status.json")).status == 404


def test_schema_refuses_what_the_feed_must_not_carry() -> None:
    document = {
        "last_updated": 1,
        "ttl": 30,
        "version": "1.0",
        "data": {"stations": [{"station_id": "a", "borrower": "someone"}]},
    }
    with pytest.raises(jsonschema.ValidationError):
        validate(document, "station_status")


# -- parts -----------------------------------------------------------------------------------


def test_rate_limit_window_and_memory() -> None:
    limit = RateLimit(2, 60)
    assert [limit.allow("a", t) for t in (0, 1, 2)] == [True, True, False]
    assert limit.allow("a", 61) is True  # the first hit left the window
    many = RateLimit(1, 60)
    for number in range(MAX_KEYS + 5):
        many.allow(str(number), 0)
    assert len(many._hits) <= MAX_KEYS


def test_pickup_choices_stay_inside_the_window() -> None:
    now = dt_util.utcnow()
    choices = pickup_choices("de", now, timedelta(minutes=120))
    stamps = [int(c.value) for c in choices]
    assert stamps == sorted(stamps)
    assert len(stamps) >= 3
    assert all(300 <= s - now.timestamp() <= 7200 for s in stamps)
    assert station_id("Locker North") == "locker-north"


@pytest.mark.parametrize("options", [{}])
async def test_options_flow_switches_the_page_on_and_removal_forgets_its_secret(
    hass: HomeAssistant,
    site: MockConfigEntry,
    hass_client_no_auth: Client,
    hass_storage: dict[str, Any],
) -> None:
    client = await hass_client_no_auth()
    assert (await client.get(PAGE)).status == 404
    result = await hass.config_entries.options.async_init(site.entry_id)
    fields = {str(key): key for key in result["data_schema"].schema}
    assert {"booking_page", "booking_access_key", "availability_feed"} <= set(fields)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "booking_page": True,
            "booking_access_key": "pilot",
            "booking_max_active": 3,
            "booking_per_address_h": 30,
            "booking_per_contact_day": 4,
            "availability_feed": True,
        },
    )
    await hass.async_block_till_done()
    assert site.options["booking_page"] is True
    assert site.options["booking_max_active"] == 3
    assert site.options["full_threshold"] == 80, "the rest of the form keeps its values"
    response = await client.get(PAGE)
    assert response.status == 200
    assert 'name="key"' in await response.text()
    assert f"city_ops.booking.{site.entry_id}" in hass_storage
    assert await hass.config_entries.async_remove(site.entry_id)
    await hass.async_block_till_done()
    assert f"city_ops.booking.{site.entry_id}" not in hass_storage
    assert (await client.get(PAGE)).status == 404


async def test_page_views_are_limited_per_address(
    hass: HomeAssistant, site: MockConfigEntry, hass_client_no_auth: Client
) -> None:
    client = await hass_client_no_auth()
    statuses = [(await client.get(PAGE)).status for _ in range(61)]
    assert statuses[:60] == [200] * 60
    assert statuses[60] == 429
    response = await client.get(f"{FEED}/gbfs.json")
    assert response.status == 429
