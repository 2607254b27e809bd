"""The residents' booking page: Home Assistant HTTP views without login under one path prefix.

A resident reserves through the same `Lending` as the `reserve` service, so the booking is an
ordinary reservation (calendar, dashboard, services). What the page adds lives here: a per-site
secret (keyed contact references, signed forms), manage links (only their SHA-256 is stored),
rate limits per client address and per contact, and a cap on active bookings per contact.
Nothing here logs a contact, an address, a token or a code.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import hashlib
import hmac
import secrets
import time
from typing import Any

from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.helpers.storage import Store
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util import dt as dt_util, slugify
from homeassistant.util.hass_dict import HassKey

from . import feed
from .booking_page import (
    CONTENT_SECURITY_POLICY,
    BankOffer,
    Booked,
    BookingStatus,
    Choice,
    ItemOffer,
    ReserveForm,
    clock,
    duration,
    pick_language,
    render_booked,
    render_index,
    render_manage,
    render_message,
    text,
)
from .const import (
    CONF_AVAILABILITY_FEED,
    CONF_BOOKING_ACCESS_KEY,
    CONF_BOOKING_MAX_ACTIVE,
    CONF_BOOKING_PAGE,
    CONF_BOOKING_PER_ADDRESS_H,
    CONF_BOOKING_PER_CONTACT_DAY,
    DEFAULT_BOOKING_MAX_ACTIVE,
    DEFAULT_BOOKING_PER_ADDRESS_H,
    DEFAULT_BOOKING_PER_CONTACT_DAY,
    DOMAIN,
    LOGGER,
)
from .model.locker import LoanState, LockerBank, LockerRefused
from .runtime import CityOpsConfigEntry
from .throttled_log import ThrottledLog

BOOKING_PREFIX = "/city_ops/book"
COOKIE = "city_ops_booking"
MAX_FORM_BYTES = 4096
FORM_VALID_S = 2 * 3600
PAGE_VIEWS_PER_MINUTE = 60  # per client address: generous for people, tight for scripts
MAX_KEYS = 10_000  # addresses or contacts remembered by a limiter
STORAGE_VERSION = 1
PICKUP_STEPS_MIN = (15, 30, 45, 60, 90, 120, 180, 240, 360, 480, 720, 1440, 2880, 4320, 10080)
LOAN_STEPS_MIN = (30, 60, 120, 180, 240, 360, 480, 720, 1440, 2880, 4320, 10080)
TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

FEED_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Access-Control-Allow-Origin": "*",  # open data: any app may read it
}

DATA_DESKS: HassKey[dict[str, BookingDesk]] = HassKey(f"{DOMAIN}_booking_desks")


def site_slug(title: str) -> str:
    """The site's part of the page's address, from its name."""
    return slugify(title, separator="-")


def station_id(name: str) -> str:
    """A bank's public id (page and feed), from its name: never a Home Assistant id."""
    return slugify(name, separator="-")


def find_site(hass: HomeAssistant, slug: str) -> CityOpsConfigEntry | None:
    """The loaded site whose name makes `slug`; two sites of the same name get none."""
    found = [
        entry
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.state is ConfigEntryState.LOADED and site_slug(entry.title) == slug
    ]
    return found[0] if len(found) == 1 else None


def bank_offers(entry: CityOpsConfigEntry) -> list[tuple[str, BankOffer]]:
    """The site's banks as residents see them, with their asset ids, sorted by name."""
    runtime = entry.runtime_data
    offers = []
    for asset_id, bank in runtime.site.locker_banks.items():
        asset = runtime.assets[asset_id]
        free = bank.available()
        items: dict[str, ItemOffer] = {}
        for compartment in sorted(bank.compartments.values(), key=lambda c: c.spec.number):
            kind = compartment.spec.item_type
            if kind not in items:
                items[kind] = ItemOffer(kind, compartment.spec.item, free.get(kind, 0))
        description = asset.extra.get("description")
        disabled = sum(1 for c in bank.compartments.values() if c.status.out_of_service)
        offers.append(
            (
                asset_id,
                BankOffer(
                    station_id=station_id(bank.spec.name),
                    name=bank.spec.name,
                    latitude=bank.spec.latitude,
                    longitude=bank.spec.longitude,
                    description=description[:300] if isinstance(description, str) else "",
                    items=tuple(items.values()),
                    in_service=disabled < len(bank.compartments),
                    capacity=len(bank.compartments),
                    disabled=disabled,
                ),
            )
        )
    return sorted(offers, key=lambda pair: pair[1].name)


class RateLimit:
    """At most `limit` hits per key within `window_s` (a sliding window, bounded memory)."""

    def __init__(self, limit: int, window_s: float) -> None:
        """Start with no hits."""
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float | None = None) -> bool:
        """Count a hit for `key` unless it is over its limit (then refuse, counting nothing)."""
        now = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= MAX_KEYS:
                self._forget(now)
            hits = self._hits[key] = deque()
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True

    def _forget(self, now: float) -> None:
        self._hits = {k: h for k, h in self._hits.items() if h and now - h[-1] < self.window_s}
        if len(self._hits) >= MAX_KEYS:  # a flood of addresses: start over rather than grow
            self._hits.clear()


@dataclass(slots=True)
class ManageLink:
    """Which booking a manage link opens (stored under the SHA-256 of its token)."""

    asset_id: str
    reservation_id: str


class BookingDesk:
    """A site's booking page at run time: secret, manage links, limits and counters."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Prepare the private store; `async_load` reads it."""
        self._store: Store[dict[str, Any]] = Store(
            hass,
            STORAGE_VERSION,
            f"{DOMAIN}.booking.{entry_id}",
            atomic_writes=True,
            private=True,
        )
        self._secret = b""
        self.links: dict[str, ManageLink] = {}
        self.lock = asyncio.Lock()
        self.counters: Counter[str] = Counter()
        self.page_views = RateLimit(PAGE_VIEWS_PER_MINUTE, 60)
        self.forms_per_address = RateLimit(DEFAULT_BOOKING_PER_ADDRESS_H, 3600)
        self.per_contact = RateLimit(DEFAULT_BOOKING_PER_CONTACT_DAY, 86400)
        self._used_forms: dict[str, float] = {}
        self.log = ThrottledLog(LOGGER)

    async def async_load(self) -> None:
        """Read the secret and the links; a first start makes a new secret."""
        stored = await self._store.async_load() or {}
        try:
            self._secret = base64.b64decode(stored.get("secret", ""), validate=True)
        except ValueError:
            self._secret = b""
        links = stored.get("links")
        if isinstance(links, Mapping):
            for digest, link in links.items():
                if isinstance(link, Mapping):
                    self.links[str(digest)] = ManageLink(
                        str(link.get("asset_id")), str(link.get("reservation_id"))
                    )
        if len(self._secret) < 32:
            self._secret = secrets.token_bytes(32)
            await self.async_save()

    async def async_save(self) -> None:
        """Store the secret and the links at once (a link shown must still work after a crash)."""
        await self._store.async_save(
            {
                "secret": base64.b64encode(self._secret).decode(),
                "links": {
                    digest: {"asset_id": link.asset_id, "reservation_id": link.reservation_id}
                    for digest, link in self.links.items()
                },
            }
        )

    async def async_remove(self) -> None:
        """Forget everything (the site is deleted)."""
        await self._store.async_remove()

    def apply_options(self, options: Mapping[str, Any]) -> None:
        """Follow the site's limits as the operator set them."""
        self.forms_per_address.limit = int(
            options.get(CONF_BOOKING_PER_ADDRESS_H, DEFAULT_BOOKING_PER_ADDRESS_H)
        )
        self.per_contact.limit = int(
            options.get(CONF_BOOKING_PER_CONTACT_DAY, DEFAULT_BOOKING_PER_CONTACT_DAY)
        )

    def refuse(self, kind: str) -> None:
        """Count a refusal; one log line per kind and period, with nothing of the request."""
        self.counters[f"refused_{kind}"] += 1
        self.log.info(f"booking_refused:{kind}", "Booking page refused a request: %s", kind)

    # -- keyed values -------------------------------------------------------------------------

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._secret, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()

    def contact_ref(self, contact: str) -> str:
        """The borrower reference of a contact: keyed, so nobody can test guesses offline."""
        normalized = "".join(contact.casefold().split())
        return "web-" + self._mac("contact", normalized)[:20]

    def form_token(self, cookie: str, purpose: str, now: float | None = None) -> str:
        """A signed, single-use form token bound to the browser's cookie and the form."""
        issued = int(time.time() if now is None else now)
        nonce = secrets.token_urlsafe(12)
        mac = self._mac("form", f"{cookie}|{purpose}|{issued}|{nonce}")
        return f"{issued}.{nonce}.{mac}"

    def check_form_token(
        self, cookie: str | None, purpose: str, token: str, now: float | None = None
    ) -> bool:
        """Whether a sent form is ours, fresh, from this browser and not sent before."""
        now = time.time() if now is None else now
        issued_text, _, rest = token.partition(".")
        nonce, _, mac = rest.partition(".")
        if not cookie or not issued_text.isdigit() or not nonce or len(mac) != 64:
            return False
        expected = self._mac("form", f"{cookie}|{purpose}|{issued_text}|{nonce}")
        if not hmac.compare_digest(expected, mac):
            return False
        if not 0 <= now - int(issued_text) <= FORM_VALID_S or nonce in self._used_forms:
            return False
        if len(self._used_forms) >= MAX_KEYS:
            self._used_forms = {
                n: t for n, t in self._used_forms.items() if now - t <= FORM_VALID_S
            }
        self._used_forms[nonce] = float(issued_text)
        return True

    # -- manage links -------------------------------------------------------------------------

    @staticmethod
    def token_digest(token: str) -> str:
        """What is stored of a manage link's token."""
        return hashlib.sha256(token.encode()).hexdigest()

    async def async_add_link(
        self, asset_id: str, reservation_id: str, active: Iterable[str]
    ) -> str:
        """A new manage link's token; links of bookings that ended are dropped meanwhile."""
        live = set(active) | {reservation_id}
        self.links = {d: k for d, k in self.links.items() if k.reservation_id in live}
        token = secrets.token_urlsafe(32)
        self.links[self.token_digest(token)] = ManageLink(asset_id, reservation_id)
        await self.async_save()
        return token

    def link(self, token: str) -> tuple[str, ManageLink] | None:
        """The link behind a token, with its digest."""
        if not 20 <= len(token) <= 64 or not set(token) <= TOKEN_CHARS:
            return None
        digest = self.token_digest(token)
        found = self.links.get(digest)
        return (digest, found) if found is not None else None


async def async_desk(hass: HomeAssistant, entry: CityOpsConfigEntry) -> BookingDesk:
    """The site's desk, loaded once (it outlives reloads of the site)."""
    desks = hass.data.setdefault(DATA_DESKS, {})
    desk = desks.get(entry.entry_id)
    if desk is None:
        desk = BookingDesk(hass, entry.entry_id)
        await desk.async_load()
        desk = desks.setdefault(entry.entry_id, desk)
    desk.apply_options(entry.options)
    return desk


async def async_remove_desk(hass: HomeAssistant, entry_id: str) -> None:
    """Delete a removed site's secret and links."""
    desk = hass.data.setdefault(DATA_DESKS, {}).pop(entry_id, None) or BookingDesk(hass, entry_id)
    await desk.async_remove()


def active_reservations(entry: CityOpsConfigEntry) -> list[str]:
    """Reservation ids of every booking of the site that has not ended."""
    return [
        loan.reservation_id
        for bank in entry.runtime_data.site.locker_banks.values()
        for loan in bank.active_loans()
    ]


def active_count(entry: CityOpsConfigEntry, borrower: str) -> int:
    """How many bookings of the site a borrower reference holds right now."""
    return sum(
        1
        for bank in entry.runtime_data.site.locker_banks.values()
        for loan in bank.active_loans()
        if hmac.compare_digest(loan.borrower.encode(), borrower.encode())
    )


# -- choices ---------------------------------------------------------------------------------


def pickup_choices(lang: str, now: datetime, limit: timedelta) -> list[Choice]:
    """Collect-by times within the pickup window, on five-minute marks (value: POSIX s)."""
    stamps: set[int] = set()
    limit_min = int(limit.total_seconds() // 60)
    for minutes in (*[m for m in PICKUP_STEPS_MIN if m < limit_min], limit_min):
        moment = now + timedelta(minutes=minutes)
        moment -= timedelta(minutes=moment.minute % 5, seconds=moment.second)
        moment = moment.replace(microsecond=0)
        if moment - now >= timedelta(minutes=5):
            stamps.add(int(moment.timestamp()))
    return [
        Choice(str(stamp), clock(lang, datetime.fromtimestamp(stamp, UTC), now))
        for stamp in sorted(stamps)
    ]


def period_choices(lang: str, limit: timedelta) -> list[Choice]:
    """Loan periods up to a limit (value: minutes)."""
    limit_min = int(limit.total_seconds() // 60)
    steps = sorted({*(m for m in LOAN_STEPS_MIN if m < limit_min), limit_min})
    return [Choice(str(m), duration(lang, m)) for m in steps if m >= 1]


# -- responses -------------------------------------------------------------------------------


def page_response(
    body: str, status: int = 200, *, request: web.Request | None = None, cookie: str | None = None
) -> web.Response:
    """An HTML page with the strict headers (and the form cookie when it is new)."""
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    response.headers.update(PAGE_HEADERS)
    if request is not None and cookie is not None and request.cookies.get(COOKIE) != cookie:
        response.set_cookie(
            COOKIE,
            cookie,
            path=f"{BOOKING_PREFIX}/",
            httponly=True,
            samesite="Lax",
            secure=request.secure,
        )
    return response


def not_found(request: web.Request) -> web.Response:
    """The same answer for an unknown site and a page switched off."""
    lang = pick_language(request.query.get("lang"), request.headers.get("Accept-Language"))
    return page_response(
        render_message(lang, None, "not_found_title", text(lang, "not_found")), 404
    )


def _cookie(request: web.Request) -> str:
    cookie = request.cookies.get(COOKIE, "")
    if 16 <= len(cookie) <= 64 and set(cookie) <= TOKEN_CHARS:
        return cookie
    return secrets.token_urlsafe(24)


def _client(request: web.Request) -> str:
    # Behind the city's reverse proxy Home Assistant's http settings make this the resident's.
    return request.remote or "unknown"


async def _refusal_text(hass: HomeAssistant, lang: str, err: LockerRefused) -> str:
    """The services' own translated refusal, for the resident."""
    translations = await async_get_translations(hass, lang, "exceptions", [DOMAIN])
    message = translations.get(f"component.{DOMAIN}.exceptions.locker_{err.reason}.message")
    if message is None:
        return text(lang, "error_busy")
    try:
        return message.format(**err.details)
    except KeyError, IndexError, ValueError:
        return text(lang, "error_busy")


@dataclass(slots=True)
class Visit:
    """One request to a site's page: the site, its desk, the language and the form cookie."""

    hass: HomeAssistant
    entry: CityOpsConfigEntry
    desk: BookingDesk
    lang: str
    cookie: str
    base: str  # the site's page, e.g. /city_ops/book/stadtpark

    @property
    def site_name(self) -> str:
        """What the page calls the site."""
        return self.entry.title


def _page_rate_refusal(request: web.Request, visit: Visit) -> web.Response | None:
    """A 429 page when this address asked for pages too often, else None."""
    if visit.desk.page_views.allow(_client(request)):
        return None
    visit.desk.refuse("rate_address")
    return page_response(
        render_message(visit.lang, visit.site_name, "error_title", text(visit.lang, "error_rate")),
        429,
    )


async def _visit(
    request: web.Request, slug: str, form: Mapping[str, Any] | None = None
) -> Visit | None:
    """The site behind a request if its page is on; None answers 404."""
    hass = request.app[KEY_HASS]
    entry = find_site(hass, slug)
    if entry is None or not entry.options.get(CONF_BOOKING_PAGE, False):
        return None
    desk = await async_desk(hass, entry)
    chosen = form.get("lang") if form is not None else request.query.get("lang")
    lang = pick_language(
        chosen if isinstance(chosen, str) else None, request.headers.get("Accept-Language")
    )
    return Visit(hass, entry, desk, lang, _cookie(request), f"{BOOKING_PREFIX}/{slug}")


async def _read_form(request: web.Request) -> Mapping[str, Any] | None:
    """The posted form, or None when it is too large or not a form."""
    if request.content_length is None or request.content_length > MAX_FORM_BYTES:
        return None
    try:
        return await request.post()
    except ValueError:
        return None


def _field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# -- views -----------------------------------------------------------------------------------


def index_page(
    visit: Visit,
    request: web.Request,
    *,
    error: str | None = None,
    status: int = 200,
    chosen: Mapping[str, str] | None = None,
) -> web.Response:
    """The booking page with a fresh form."""
    now = dt_util.utcnow()
    banks = [offer for _, offer in bank_offers(visit.entry)]
    specs = list(visit.entry.runtime_data.site.locker_banks.values())
    window = max((b.spec.pickup_window for b in specs), default=timedelta(hours=2))
    period = max((b.spec.loan_period for b in specs), default=timedelta(hours=4))
    form = ReserveForm(
        action=f"{visit.base}/reserve",
        csrf=visit.desk.form_token(visit.cookie, "reserve"),
        pickup=pickup_choices(visit.lang, now, window),
        loan=period_choices(visit.lang, period),
        needs_key=bool(visit.entry.options.get(CONF_BOOKING_ACCESS_KEY)),
    )
    body = render_index(visit.lang, visit.site_name, banks, form, error=error, chosen=chosen)
    return page_response(body, status, request=request, cookie=visit.cookie)


class BookingPageView(HomeAssistantView):
    """What is free where, and the reserve form."""

    url = BOOKING_PREFIX + "/{site}"
    name = "city_ops:booking:page"
    requires_auth = False

    async def get(self, request: web.Request, site: str) -> web.Response:
        """Show the page."""
        visit = await _visit(request, site)
        if visit is None:
            return not_found(request)
        if (refused := _page_rate_refusal(request, visit)) is not None:
            return refused
        return index_page(visit, request)


class BookingReserveView(HomeAssistantView):
    """A resident's reservation: checked, limited, then booked through `Lending`."""

    url = BOOKING_PREFIX + "/{site}/reserve"
    name = "city_ops:booking:reserve"
    requires_auth = False

    async def post(self, request: web.Request, site: str) -> web.Response:
        """Book, and show the codes once."""
        form = await _read_form(request)
        visit = await _visit(request, site, form)
        if visit is None:
            return not_found(request)
        desk, lang = visit.desk, visit.lang
        if not desk.forms_per_address.allow(_client(request)):
            desk.refuse("rate_address")
            return index_page(visit, request, error=text(lang, "error_rate"), status=429)
        if form is None or not desk.check_form_token(
            request.cookies.get(COOKIE), "reserve", _field(form, "csrf")
        ):
            desk.refuse("form")
            return index_page(visit, request, error=text(lang, "error_csrf"), status=403)
        chosen = {name: _field(form, name) for name in ("offer", "pickup", "loan")}
        expected_key = visit.entry.options.get(CONF_BOOKING_ACCESS_KEY) or ""
        if expected_key and not hmac.compare_digest(
            _field(form, "key").encode(), str(expected_key).encode()
        ):
            desk.refuse("access_key")
            return index_page(
                visit, request, error=text(lang, "error_key"), status=403, chosen=chosen
            )
        try:
            return await self._reserve(request, visit, form, chosen)
        except LockerRefused as err:
            desk.refuse(f"lending_{err.reason}")
            message = await _refusal_text(visit.hass, lang, err)
            return index_page(visit, request, error=message, status=409, chosen=chosen)

    async def _reserve(
        self,
        request: web.Request,
        visit: Visit,
        form: Mapping[str, Any],
        chosen: Mapping[str, str],
    ) -> web.Response:
        desk, lang, entry = visit.desk, visit.lang, visit.entry
        now = dt_util.utcnow()
        offers = {offer.station_id: (asset_id, offer) for asset_id, offer in bank_offers(entry)}
        station, _, item_type = chosen["offer"].partition("/")
        found = offers.get(station)
        if (
            found is None
            or not chosen["pickup"].isdigit()
            or not chosen["loan"].isdigit()
            or item_type not in {item.item_type for item in found[1].items}
        ):
            desk.refuse("form_values")
            return index_page(
                visit, request, error=text(lang, "error_form"), status=400, chosen=chosen
            )
        asset_id, offer = found
        bank: LockerBank = entry.runtime_data.site.locker_banks[asset_id]
        try:
            pickup_until = datetime.fromtimestamp(int(chosen["pickup"]), UTC)
        except OverflowError, ValueError, OSError:
            pickup_until = now
        window = pickup_until - now
        if not timedelta(minutes=1) <= window <= bank.spec.pickup_window:
            desk.refuse("pickup")
            limit = duration(lang, int(bank.spec.pickup_window.total_seconds() // 60))
            return index_page(
                visit, request, error=text(lang, "error_pickup", limit=limit), status=400
            )
        loan = timedelta(minutes=int(chosen["loan"][:6]))
        if not timedelta(minutes=1) <= loan <= bank.spec.loan_period:
            desk.refuse("loan")
            limit = duration(lang, int(bank.spec.loan_period.total_seconds() // 60))
            return index_page(
                visit, request, error=text(lang, "error_loan", limit=limit), status=400
            )
        contact = _field(form, "contact").strip()
        if not 3 <= len(contact) <= 64 or len("".join(contact.split())) < 3:
            desk.refuse("contact")
            return index_page(
                visit, request, error=text(lang, "error_contact"), status=400, chosen=chosen
            )
        borrower = desk.contact_ref(contact)
        if not desk.per_contact.allow(borrower):
            desk.refuse("rate_contact")
            return index_page(visit, request, error=text(lang, "error_rate"), status=429)
        cap = int(entry.options.get(CONF_BOOKING_MAX_ACTIVE, DEFAULT_BOOKING_MAX_ACTIVE))
        async with desk.lock:  # two tabs at once must not both pass the cap
            if active_count(entry, borrower) >= cap:
                desk.refuse("cap")
                return index_page(
                    visit, request, error=text(lang, "error_cap", count=cap), status=409
                )
            reservation = await entry.runtime_data.lending.async_reserve(
                asset_id,
                compartment=None,
                item_type=item_type,
                pickup_window=window,
                loan_period=loan,
                borrower=borrower,
                context=Context(),
            )
            token = await desk.async_add_link(
                asset_id, reservation.loan.reservation_id, active_reservations(entry)
            )
        desk.counters["reserved"] += 1
        spec = bank.compartments[reservation.loan.compartment].spec
        booked = Booked(
            bank=offer,
            compartment=spec.number,
            item_type=spec.item_type,
            item=spec.item,
            code=reservation.code,
            return_code=reservation.return_code,
            pickup_until=reservation.loan.pickup_until,
            loan_minutes=int(reservation.loan.loan_period.total_seconds() // 60),
            # In full: residents save or forward it; behind the city's proxy Home Assistant's
            # forwarded-headers handling gives the public scheme and host.
            manage_url=f"{request.scheme}://{request.host}{visit.base}/booking/{token}",
        )
        return page_response(render_booked(lang, visit.site_name, booked, now), 201)


class BookingManageView(HomeAssistantView):
    """A booking reached by its link: see it, cancel it, extend the loan."""

    url = BOOKING_PREFIX + "/{site}/booking/{token}"
    name = "city_ops:booking:manage"
    requires_auth = False

    async def get(self, request: web.Request, site: str, token: str) -> web.Response:
        """Show the booking."""
        visit = await _visit(request, site)
        if visit is None:
            return not_found(request)
        if (refused := _page_rate_refusal(request, visit)) is not None:
            return refused
        return self._page(request, visit, token)

    def _page(
        self,
        request: web.Request,
        visit: Visit,
        token: str,
        *,
        notice: str | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> web.Response:
        found = visit.desk.link(token)
        booking = self._status(visit, found[1]) if found else None
        if booking is None and notice is None and error is None:
            status = 404
        bank = visit.entry.runtime_data.site.locker_banks.get(found[1].asset_id) if found else None
        extend = period_choices(visit.lang, bank.spec.loan_period) if bank is not None else []
        body = render_manage(
            visit.lang,
            visit.site_name,
            booking,
            action=f"{visit.base}/booking/{token}",
            csrf=visit.desk.form_token(visit.cookie, f"manage:{found[0] if found else ''}"),
            extend=extend,
            notice=notice,
            error=error,
            back=visit.base,
            now=dt_util.utcnow(),
        )
        return page_response(body, status, request=request, cookie=visit.cookie)

    @staticmethod
    def _status(visit: Visit, link: ManageLink) -> BookingStatus | None:
        banks = dict(bank_offers(visit.entry))
        bank = visit.entry.runtime_data.site.locker_banks.get(link.asset_id)
        if bank is None or link.asset_id not in banks:
            return None
        try:
            compartment = bank.find_loan(link.reservation_id)
        except LockerRefused:
            return None
        loan = compartment.status.loan
        if loan is None:
            return None
        state = compartment.state
        until = loan.loan_until if loan.collected and loan.loan_until else loan.pickup_until
        return BookingStatus(
            bank=banks[link.asset_id],
            compartment=compartment.spec.number,
            item_type=compartment.spec.item_type,
            item=compartment.spec.item,
            state=state.value if state is not LoanState.OUT_OF_SERVICE else "reserved",
            until=until,
            can_cancel=not loan.collected,
            can_extend=loan.collected,
        )

    async def post(self, request: web.Request, site: str, token: str) -> web.Response:
        """Cancel or extend, within the rules the services enforce."""
        form = await _read_form(request)
        visit = await _visit(request, site, form)
        if visit is None:
            return not_found(request)
        desk, lang = visit.desk, visit.lang
        if not desk.forms_per_address.allow(_client(request)):
            desk.refuse("rate_address")
            return self._page(request, visit, token, error=text(lang, "error_rate"), status=429)
        found = desk.link(token)
        purpose = f"manage:{found[0] if found else ''}"
        if form is None or not desk.check_form_token(
            request.cookies.get(COOKIE), purpose, _field(form, "csrf")
        ):
            desk.refuse("form")
            return self._page(request, visit, token, error=text(lang, "error_csrf"), status=403)
        if found is None or self._status(visit, found[1]) is None:
            desk.refuse("link")
            return self._page(request, visit, token, status=404)
        digest, link = found
        lending = visit.entry.runtime_data.lending
        action = _field(form, "do")
        try:
            if action == "cancel":
                await lending.async_change(
                    link.asset_id,
                    lambda bank, now: bank.cancel(now, bank.find_loan(link.reservation_id)),
                    Context(),
                )
                desk.links.pop(digest, None)
                await desk.async_save()
                desk.counters["cancelled"] += 1
                return self._page(request, visit, token, notice=text(lang, "cancelled"))
            minutes = _field(form, "minutes")
            bank = visit.entry.runtime_data.site.locker_banks[link.asset_id]
            if action != "extend" or not minutes.isdigit():
                desk.refuse("form_values")
                return self._page(request, visit, token, error=text(lang, "error_form"), status=400)
            by = timedelta(minutes=int(minutes[:6]))
            if not timedelta(minutes=1) <= by <= bank.spec.loan_period:
                desk.refuse("loan")
                limit = duration(lang, int(bank.spec.loan_period.total_seconds() // 60))
                return self._page(
                    request, visit, token, error=text(lang, "error_loan", limit=limit), status=400
                )
            await lending.async_change(
                link.asset_id,
                lambda bank, now: bank.extend(now, bank.find_loan(link.reservation_id), by),
                Context(),
            )
        except LockerRefused as err:
            desk.refuse(f"lending_{err.reason}")
            message = await _refusal_text(visit.hass, lang, err)
            return self._page(request, visit, token, error=message, status=409)
        desk.counters["extended"] += 1
        status = self._status(visit, link)
        until = clock(lang, status.until, dt_util.utcnow()) if status else ""
        return self._page(request, visit, token, notice=text(lang, "extended", until=until))


def booking_diagnostics(hass: HomeAssistant, entry_id: str) -> dict[str, Any]:
    """Counters of a site's page (refusals by kind, bookings); nothing about anybody."""
    desk = hass.data.get(DATA_DESKS, {}).get(entry_id)
    if desk is None:
        return {}
    return {"counters": dict(desk.counters), "manage_links": len(desk.links)}


class AvailabilityFeedView(HomeAssistantView):
    """The open availability feed: JSON, cacheable, for the city's app and open data portal."""

    url = BOOKING_PREFIX + "/{site}/feed/{document}"
    name = "city_ops:booking:feed"
    requires_auth = False

    async def get(self, request: web.Request, site: str, document: str) -> web.Response:
        """Serve one feed document."""
        hass = request.app[KEY_HASS]
        entry = find_site(hass, site)
        name = document.removesuffix(".json")
        if (
            entry is None
            or not entry.options.get(CONF_AVAILABILITY_FEED, False)
            or name not in feed.DOCUMENTS
        ):
            return web.json_response({"error": "not_found"}, status=404, headers=FEED_HEADERS)
        desk = await async_desk(hass, entry)
        if not desk.page_views.allow(_client(request)):
            desk.refuse("rate_address")
            return web.json_response(
                {"error": "too_many_requests"}, status=429, headers=FEED_HEADERS
            )
        now = dt_util.utcnow()
        banks = [offer for _, offer in bank_offers(entry)]
        base = f"{BOOKING_PREFIX}/{site}/feed"
        if name == "gbfs":
            body = feed.discovery(base, now)
        elif name == "station_information":
            body = feed.station_information(entry.title, banks, now)
        else:
            body = feed.station_status(banks, now)
        tag = feed.entity_tag(body)
        headers = {
            **FEED_HEADERS,
            "Cache-Control": f"public, max-age={feed.TTL_S}",
            "ETag": tag,
        }
        if tag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.json_response(body, headers=headers)


def async_register_booking(hass: HomeAssistant) -> None:
    """Serve the booking pages and the availability feeds of every site."""
    for view in (
        BookingPageView(),
        BookingReserveView(),
        BookingManageView(),
        AvailabilityFeedView(),
    ):
        hass.http.register_view(view)
