"""The residents' booking page as HTML: German and English, no script, one hashed stylesheet.

Everything shown is escaped here; callers pass plain values. Nothing from Home Assistant (ids,
entity names, users) reaches these functions: banks carry a public id made from their name.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
import hashlib
from html import escape
from urllib.parse import quote

from homeassistant.util import dt as dt_util

LANGUAGES = ("de", "en")

STYLE = """
:root{--ink:#14171a;--muted:#3d4650;--line:#8a949e;--bg:#fff;--soft:#eef3f7;--act:#0b4f8a;
--ok:#0f5b2e;--bad:#8f1d1d;font-size:112.5%}
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
background:var(--bg);line-height:1.5}
.skip{position:absolute;left:-999px}.skip:focus{left:.5rem;top:.5rem;background:#fff;padding:.5rem}
header,main,footer{max-width:40rem;margin:0 auto;padding:0 1rem}
header{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;
border-bottom:2px solid var(--line);padding-top:.5rem;padding-bottom:.5rem}
header p{margin:0;font-weight:700}
nav a,nav span{display:inline-block;min-height:48px;min-width:48px;padding:.6rem .5rem;
text-align:center}
nav span{font-weight:700;text-decoration:underline}
h1{font-size:1.6rem;margin:1rem 0 .5rem}h2{font-size:1.25rem;margin:1.25rem 0 .5rem}
a{color:var(--act)}a:focus,button:focus,input:focus,select:focus,summary:focus{
outline:3px solid #e07b00;outline-offset:2px}
.bank{border:2px solid var(--line);border-radius:.5rem;padding:.75rem 1rem;margin:.75rem 0}
.bank h3{margin:0 0 .25rem;font-size:1.15rem}.bank p{margin:.25rem 0}
.bank ul{margin:.25rem 0;padding-left:1.2rem}.none{color:var(--muted)}
fieldset{border:2px solid var(--line);border-radius:.5rem;margin:1rem 0;padding:.5rem 1rem}
legend{font-weight:700;padding:0 .25rem}
.choice{display:flex;align-items:center;gap:.75rem;min-height:48px;padding:.25rem 0}
.choice input{width:1.5rem;height:1.5rem;flex:none}
label.field{display:block;font-weight:700;margin:1rem 0 .25rem}
.hint{display:block;font-weight:400;color:var(--muted);font-size:.95rem}
input[type=text],input[type=password],select{width:100%;min-height:48px;font-size:1.1rem;
padding:.5rem;border:2px solid var(--ink);border-radius:.4rem;background:#fff;color:var(--ink)}
button{display:block;width:100%;min-height:56px;margin:1.25rem 0;font-size:1.15rem;
font-weight:700;color:#fff;background:var(--act);border:0;border-radius:.5rem;cursor:pointer}
button.secondary{background:#fff;color:var(--bad);border:2px solid var(--bad)}
.alert{border-left:.5rem solid var(--bad);background:#fbeaea;padding:.75rem 1rem;margin:1rem 0}
.done{border-left:.5rem solid var(--ok);background:#e7f4ec;padding:.75rem 1rem;margin:1rem 0}
.codes{display:grid;gap:.75rem;margin:1rem 0}
.code{border:3px solid var(--ink);border-radius:.5rem;padding:.5rem 1rem;text-align:center}
.code span{display:block;font-weight:700}
.code strong{display:block;font-family:ui-monospace,"DejaVu Sans Mono",monospace;
font-size:2.6rem;letter-spacing:.15em;line-height:1.2}
ol li{margin:.4rem 0}.link{word-break:break-all;background:var(--soft);padding:.5rem;
border-radius:.4rem}
footer{color:var(--muted);font-size:.9rem;border-top:2px solid var(--line);margin-top:2rem;
padding-top:.5rem;padding-bottom:2rem}
"""
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
# No script at all; the one inline stylesheet is allowed by its hash.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src '{STYLE_HASH}'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

TEXTS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "language": "Language",
        "skip": "Skip to content",
        "title": "Borrow from the park's lockers",
        "intro": "Walkers, hand carts and more: reserve here, collect at the locker with a code.",
        "free_now": "Free now",
        "none_free": "Nothing free at the moment.",
        "free_count": "{count} free",
        "out_of_service": "Not in service right now.",
        "show_map": "Show on a map ({lat}, {lon})",
        "reserve": "Reserve",
        "what": "What and where",
        "pickup": "Collect by",
        "pickup_hint": "Your code works from now until this time.",
        "loan": "How long you need it",
        "loan_hint": "Counted from when you take it out.",
        "contact": "Your contact reference",
        "contact_hint": (
            "A name, phone number or word of your choice (3 to 64 characters). "
            "It limits how much one person can book; we keep only a scrambled form of it."
        ),
        "access_key": "Access key",
        "access_key_hint": "This page is open to a pilot group; the key is in your invitation.",
        "submit": "Reserve now",
        "nothing_to_book": "Nothing can be reserved right now. Please try again later.",
        "booked_title": "Your reservation",
        "booked": "Reserved: {item} at {bank}, compartment {compartment}.",
        "codes_once": (
            "These codes are shown only now. Write them down or take a photo of this screen."
        ),
        "pickup_code": "Pickup code",
        "return_code": "Return code",
        "what_to_do": "At the locker",
        "step_go": "Go to {bank} by {until}.",
        "step_type": "Type the pickup code on the keypad. Compartment {compartment} unlocks.",
        "step_take": "Open the door, take the {item} out and close the door.",
        "step_return": (
            "To return it within {period}: type the return code, put the {item} back "
            "and close the door."
        ),
        "manage": "Change or cancel",
        "manage_hint": "Keep this link: with it you can cancel the reservation or extend the loan.",
        "manage_link": "Open my reservation",
        "manage_title": "My reservation",
        "state_reserved": (
            "Reserved: {item} at {bank}, compartment {compartment}. Collect by {until}."
        ),
        "state_on_loan": "On loan: {item} from {bank}, compartment {compartment}, until {until}.",
        "state_overdue": (
            "Overdue since {until}: please bring the {item} back to {bank}, "
            "compartment {compartment}."
        ),
        "codes_not_again": "For your safety the codes are not shown again.",
        "cancel": "Cancel reservation",
        "extend_by": "Extend by",
        "extend": "Extend loan",
        "cancelled": "Your reservation is cancelled. Thank you for letting us know.",
        "extended": "Your loan now runs until {until}.",
        "ended": "This reservation has ended or the link is not valid.",
        "back": "Back to the booking page",
        "not_found_title": "Page not found",
        "not_found": "There is no booking page here.",
        "error_title": "That did not work",
        "error_csrf": "The form was out of date or sent twice. Please try again.",
        "error_rate": "Too many requests. Please wait a while and try again.",
        "error_key": "The access key is not right.",
        "error_cap": "You already have {count} active reservations; that is the most allowed.",
        "error_contact": "Please enter a contact reference of 3 to 64 characters.",
        "error_form": "Please choose an item, a pickup time and a loan period.",
        "error_pickup": "Please choose a pickup time within the next {limit}.",
        "error_loan": "Please choose a loan period of at most {limit}.",
        "error_busy": "Something went wrong on our side. Please try again later.",
        "footer": "Questions? Ask the park's staff. No account needed, no tracking.",
        "minutes": "{n} minutes",
        "hour": "1 hour",
        "hours": "{n} hours",
        "day": "1 day",
        "days": "{n} days",
    },
    "de": {
        "language": "Sprache",
        "skip": "Zum Inhalt springen",
        "title": "Ausleihen aus den Schließfächern im Park",
        "intro": (
            "Rollatoren, Handwagen und mehr: hier reservieren, am Schließfach mit einem Code "
            "abholen."
        ),
        "free_now": "Jetzt frei",
        "none_free": "Im Moment ist nichts frei.",
        "free_count": "{count} frei",
        "out_of_service": "Zurzeit außer Betrieb.",
        "show_map": "Auf der Karte zeigen ({lat}, {lon})",
        "reserve": "Reservieren",
        "what": "Was und wo",
        "pickup": "Abholen bis",
        "pickup_hint": "Ihr Code gilt ab jetzt bis zu dieser Uhrzeit.",
        "loan": "Wie lange Sie es brauchen",
        "loan_hint": "Gerechnet ab der Abholung.",
        "contact": "Ihre Kontaktangabe",
        "contact_hint": (
            "Ein Name, eine Telefonnummer oder ein Wort Ihrer Wahl (3 bis 64 Zeichen). "
            "Damit begrenzen wir, wie viel eine Person bucht; wir speichern sie nur in "
            "unkenntlich gemachter Form."
        ),
        "access_key": "Zugangsschlüssel",
        "access_key_hint": (
            "Diese Seite ist für eine Pilotgruppe freigegeben; den Schlüssel finden Sie in "
            "Ihrer Einladung."
        ),
        "submit": "Jetzt reservieren",
        "nothing_to_book": "Im Moment ist nichts reservierbar. Bitte versuchen Sie es später.",
        "booked_title": "Ihre Reservierung",
        "booked": "Reserviert: {item} in {bank}, Fach {compartment}.",
        "codes_once": (
            "Diese Codes werden nur jetzt angezeigt. Schreiben Sie sie auf oder fotografieren "
            "Sie diese Seite."
        ),
        "pickup_code": "Abholcode",
        "return_code": "Rückgabecode",
        "what_to_do": "Am Schließfach",
        "step_go": "Gehen Sie bis {until} zu {bank}.",
        "step_type": "Tippen Sie den Abholcode am Tastenfeld ein. Fach {compartment} öffnet sich.",
        "step_take": "Öffnen Sie die Tür, nehmen Sie den {item} heraus und schließen Sie die Tür.",
        "step_return": (
            "Zurückgeben innerhalb von {period}: Rückgabecode eintippen, den {item} "
            "hineinstellen und die Tür schließen."
        ),
        "manage": "Ändern oder stornieren",
        "manage_hint": (
            "Bewahren Sie diesen Link auf: damit können Sie stornieren oder die Ausleihe "
            "verlängern."
        ),
        "manage_link": "Meine Reservierung öffnen",
        "manage_title": "Meine Reservierung",
        "state_reserved": (
            "Reserviert: {item} in {bank}, Fach {compartment}. Abholen bis {until}."
        ),
        "state_on_loan": "Ausgeliehen: {item} aus {bank}, Fach {compartment}, bis {until}.",
        "state_overdue": (
            "Überfällig seit {until}: Bitte bringen Sie den {item} zurück zu {bank}, "
            "Fach {compartment}."
        ),
        "codes_not_again": "Zu Ihrer Sicherheit werden die Codes nicht noch einmal angezeigt.",
        "cancel": "Reservierung stornieren",
        "extend_by": "Verlängern um",
        "extend": "Ausleihe verlängern",
        "cancelled": "Ihre Reservierung ist storniert. Danke, dass Sie Bescheid geben.",
        "extended": "Ihre Ausleihe läuft jetzt bis {until}.",
        "ended": "Diese Reservierung ist beendet oder der Link ist nicht gültig.",
        "back": "Zurück zur Buchungsseite",
        "not_found_title": "Seite nicht gefunden",
        "not_found": "Hier gibt es keine Buchungsseite.",
        "error_title": "Das hat nicht geklappt",
        "error_csrf": (
            "Das Formular war veraltet oder wurde doppelt gesendet. Bitte versuchen Sie es noch "
            "einmal."
        ),
        "error_rate": "Zu viele Anfragen. Bitte warten Sie eine Weile und versuchen Sie es erneut.",
        "error_key": "Der Zugangsschlüssel stimmt nicht.",
        "error_cap": ("Sie haben schon {count} laufende Reservierungen; mehr sind nicht möglich."),
        "error_contact": "Bitte geben Sie eine Kontaktangabe mit 3 bis 64 Zeichen ein.",
        "error_form": "Bitte wählen Sie einen Gegenstand, eine Abholzeit und eine Leihdauer.",
        "error_pickup": "Bitte wählen Sie eine Abholzeit innerhalb der nächsten {limit}.",
        "error_loan": "Bitte wählen Sie eine Leihdauer von höchstens {limit}.",
        "error_busy": "Bei uns ist etwas schiefgegangen. Bitte versuchen Sie es später.",
        "footer": ("Fragen? Wenden Sie sich an das Parkpersonal. Kein Konto nötig, kein Tracking."),
        "minutes": "{n} Minuten",
        "hour": "1 Stunde",
        "hours": "{n} Stunden",
        "day": "1 Tag",
        "days": "{n} Tage",
    },
}

# Item types the page names in the resident's language; others show the operator's item name.
ITEM_NAMES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "walker": "Walker",
        "hand_cart": "Hand cart",
        "wheelchair": "Folding wheelchair",
        "bicycle_trailer": "Bicycle trailer",
        "beach_wagon": "Beach wagon",
    },
    "de": {
        "walker": "Rollator",
        "hand_cart": "Handwagen",
        "wheelchair": "Faltrollstuhl",
        "bicycle_trailer": "Fahrradanhänger",
        "beach_wagon": "Bollerwagen",
    },
}


def pick_language(query: str | None, accept_language: str | None) -> str:
    """The page's language: the switch's choice, else the browser's first known one."""
    if query in LANGUAGES:
        return query
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and weight > 0:
            ranked.append((-weight, index, primary))
    return min(ranked)[2] if ranked else "en"


def text(lang: str, key: str, **values: object) -> str:
    """One text in the page's language, placeholders filled (not yet escaped)."""
    return TEXTS[lang][key].format(**values)


def item_name(lang: str, item_type: str, fallback: str) -> str:
    """What an item type is called in the page's language."""
    return ITEM_NAMES[lang].get(item_type, fallback)


def duration(lang: str, minutes: int) -> str:
    """A period in words: 30 minutes, 2 hours, 1 day."""
    if minutes % 1440 == 0:
        days = minutes // 1440
        return text(lang, "day") if days == 1 else text(lang, "days", n=days)
    if minutes % 60 == 0:
        hours = minutes // 60
        return text(lang, "hour") if hours == 1 else text(lang, "hours", n=hours)
    return text(lang, "minutes", n=minutes)


WEEKDAYS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "de": ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"),
}


def clock(lang: str, when: datetime, now: datetime) -> str:
    """A moment in local time: 15:30 today, with the day when it is another day."""
    local = dt_util.as_local(when)
    time_text = local.strftime("%H:%M")
    if local.date() == dt_util.as_local(now).date():
        return time_text
    day = WEEKDAYS[lang][local.weekday()]
    if lang == "de":
        return f"{day} {local.day}.{local.month}., {time_text}"
    return f"{day} {local.day}/{local.month}, {time_text}"


# -- the parts of a page ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemOffer:
    """An item type at a bank and how many are free now."""

    item_type: str
    item: str  # the operator's name for it
    free: int


@dataclass(frozen=True, slots=True)
class BankOffer:
    """A bank as residents see it."""

    station_id: str
    name: str
    latitude: float
    longitude: float
    description: str
    items: tuple[ItemOffer, ...]
    in_service: bool
    capacity: int = 0  # compartments
    disabled: int = 0  # compartments out of service


@dataclass(frozen=True, slots=True)
class Choice:
    """An option of a select box."""

    value: str
    label: str


@dataclass(frozen=True, slots=True)
class ReserveForm:
    """What the reserve form offers."""

    action: str
    csrf: str
    pickup: Sequence[Choice]
    loan: Sequence[Choice]
    needs_key: bool


def _page(lang: str, site: str, title: str, body: str, switch_url: str | None) -> str:
    other = "en" if lang == "de" else "de"
    names = {"de": "Deutsch", "en": "English"}
    switch = ""
    if switch_url is not None:
        switch = (
            f'<nav aria-label="{escape(text(lang, "language"))}">'
            f'<span aria-current="true">{names[lang]}</span> '
            f'<a href="{escape(switch_url)}?lang={other}" lang="{other}" hreflang="{other}">'
            f"{names[other]}</a></nav>"
        )
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{escape(title)} · {escape(site)}</title><style>{STYLE}</style></head><body>"
        f'<a class="skip" href="#main">{escape(text(lang, "skip"))}</a>'
        f"<header><p>{escape(site)}</p>{switch}</header>"
        f'<main id="main"><h1>{escape(title)}</h1>{body}</main>'
        f"<footer><p>{escape(text(lang, 'footer'))}</p></footer></body></html>"
    )


def _map_link(lang: str, bank: BankOffer) -> str:
    lat, lon = f"{bank.latitude:.5f}", f"{bank.longitude:.5f}"
    # geo: opens the phone's own map app; nothing is loaded by this page.
    return (
        f'<p><a href="geo:{lat},{lon}?q={lat},{lon}({quote(bank.name)})">'
        f"{escape(text(lang, 'show_map', lat=lat, lon=lon))}</a></p>"
    )


def _bank_card(lang: str, bank: BankOffer) -> str:
    parts = [f'<section class="bank" aria-labelledby="bank-{escape(bank.station_id)}">']
    parts.append(f'<h3 id="bank-{escape(bank.station_id)}">{escape(bank.name)}</h3>')
    if bank.description:
        parts.append(f"<p>{escape(bank.description)}</p>")
    parts.append(_map_link(lang, bank))
    if not bank.in_service:
        parts.append(f'<p class="none">{escape(text(lang, "out_of_service"))}</p>')
    else:
        rows = [
            f"<li>{escape(item_name(lang, i.item_type, i.item))}: "
            f"{escape(text(lang, 'free_count', count=i.free))}</li>"
            for i in bank.items
            if i.free > 0
        ]
        parts.append(
            f"<ul>{''.join(rows)}</ul>"
            if rows
            else f'<p class="none">{escape(text(lang, "none_free"))}</p>'
        )
    parts.append("</section>")
    return "".join(parts)


def _select(name: str, label: str, hint: str, choices: Sequence[Choice], chosen: str) -> str:
    options = "".join(
        f'<option value="{escape(c.value)}"{" selected" if c.value == chosen else ""}>'
        f"{escape(c.label)}</option>"
        for c in choices
    )
    return (
        f'<label class="field" for="{name}">{escape(label)}'
        f'<span class="hint" id="{name}-hint">{escape(hint)}</span></label>'
        f'<select id="{name}" name="{name}" aria-describedby="{name}-hint">{options}</select>'
    )


def _alert(message: str | None) -> str:
    return f'<div class="alert" role="alert"><p>{escape(message)}</p></div>' if message else ""


def render_index(
    lang: str,
    site: str,
    banks: Sequence[BankOffer],
    form: ReserveForm,
    *,
    error: str | None = None,
    chosen: Mapping[str, str] | None = None,
) -> str:
    """The booking page: what is free where, and the reserve form."""
    chosen = chosen or {}
    body = [f"<p>{escape(text(lang, 'intro'))}</p>", _alert(error)]
    body.append(f'<h2 id="free">{escape(text(lang, "free_now"))}</h2>')
    body += [_bank_card(lang, bank) for bank in banks]
    offers = [
        (f"{bank.station_id}/{item.item_type}", bank, item)
        for bank in banks
        if bank.in_service
        for item in bank.items
        if item.free > 0
    ]
    body.append(f'<h2 id="reserve">{escape(text(lang, "reserve"))}</h2>')
    if not offers:
        body.append(f"<p>{escape(text(lang, 'nothing_to_book'))}</p>")
        return _page(lang, site, text(lang, "title"), "".join(body), "")
    picked = chosen.get("offer") or offers[0][0]
    if picked not in {value for value, _, _ in offers}:
        picked = offers[0][0]
    radios = "".join(
        f'<div class="choice"><input type="radio" name="offer" id="offer-{index}" '
        f'value="{escape(value)}"{" checked" if value == picked else ""} required>'
        f'<label for="offer-{index}">{escape(item_name(lang, item.item_type, item.item))} · '
        f"{escape(bank.name)} ({escape(text(lang, 'free_count', count=item.free))})</label></div>"
        for index, (value, bank, item) in enumerate(offers)
    )
    key_field = ""
    if form.needs_key:
        key_field = (
            f'<label class="field" for="key">{escape(text(lang, "access_key"))}'
            f'<span class="hint" id="key-hint">{escape(text(lang, "access_key_hint"))}</span>'
            '</label><input type="password" id="key" name="key" required maxlength="128" '
            'autocomplete="off" aria-describedby="key-hint">'
        )
    body.append(
        f'<form method="post" action="{escape(form.action)}">'
        f'<input type="hidden" name="csrf" value="{escape(form.csrf)}">'
        f'<input type="hidden" name="lang" value="{lang}">'
        f"<fieldset><legend>{escape(text(lang, 'what'))}</legend>{radios}</fieldset>"
        + _select(
            "pickup",
            text(lang, "pickup"),
            text(lang, "pickup_hint"),
            form.pickup,
            chosen.get("pickup", form.pickup[min(2, len(form.pickup) - 1)].value),
        )
        + _select(
            "loan",
            text(lang, "loan"),
            text(lang, "loan_hint"),
            form.loan,
            chosen.get("loan", form.loan[-1].value),
        )
        + f'<label class="field" for="contact">{escape(text(lang, "contact"))}'
        f'<span class="hint" id="contact-hint">{escape(text(lang, "contact_hint"))}</span>'
        '</label><input type="text" id="contact" name="contact" required minlength="3" '
        'maxlength="64" autocomplete="off" aria-describedby="contact-hint">'
        + key_field
        + f'<button type="submit">{escape(text(lang, "submit"))}</button></form>'
    )
    return _page(lang, site, text(lang, "title"), "".join(body), "")


@dataclass(frozen=True, slots=True)
class Booked:
    """A fresh reservation as the resident sees it, codes included (this page only)."""

    bank: BankOffer
    compartment: int
    item_type: str
    item: str
    code: str
    return_code: str
    pickup_until: datetime
    loan_minutes: int
    manage_url: str


def _code_box(label: str, code: str) -> str:
    spaced = " ".join(code)  # read digit by digit, not as a number
    shown = f"{code[:3]}&#8239;{code[3:]}" if len(code) == 6 else escape(code)
    return (
        f'<div class="code"><span>{escape(label)}</span>'
        f'<strong aria-label="{escape(spaced)}">{shown}</strong></div>'
    )


def render_booked(lang: str, site: str, booked: Booked, now: datetime) -> str:
    """The one page that shows a reservation's codes."""
    item = item_name(lang, booked.item_type, booked.item)
    values = {"item": item, "bank": booked.bank.name, "compartment": booked.compartment}
    steps = [
        text(lang, "step_go", bank=booked.bank.name, until=clock(lang, booked.pickup_until, now)),
        text(lang, "step_type", compartment=booked.compartment),
        text(lang, "step_take", item=item),
        text(lang, "step_return", item=item, period=duration(lang, booked.loan_minutes)),
    ]
    body = (
        f'<div class="done" role="status"><p>{escape(text(lang, "booked", **values))}</p></div>'
        f"<p><strong>{escape(text(lang, 'codes_once'))}</strong></p>"
        '<div class="codes">'
        + _code_box(text(lang, "pickup_code"), booked.code)
        + _code_box(text(lang, "return_code"), booked.return_code)
        + "</div>"
        f"<h2>{escape(text(lang, 'what_to_do'))}</h2>"
        + "<ol>"
        + "".join(f"<li>{escape(step)}</li>" for step in steps)
        + "</ol>"
        + _map_link(lang, booked.bank)
        + f"<h2>{escape(text(lang, 'manage'))}</h2><p>{escape(text(lang, 'manage_hint'))}</p>"
        f'<p><a id="manage" href="{escape(booked.manage_url)}?lang={lang}">'
        f"{escape(text(lang, 'manage_link'))}</a></p>"
        f'<p class="link">{escape(booked.manage_url)}</p>'
    )
    return _page(lang, site, text(lang, "booked_title"), body, None)


@dataclass(frozen=True, slots=True)
class BookingStatus:
    """An active reservation or loan behind a manage link (never its codes)."""

    bank: BankOffer
    compartment: int
    item_type: str
    item: str
    state: str  # reserved, on_loan, overdue
    until: datetime
    can_cancel: bool
    can_extend: bool


def render_manage(
    lang: str,
    site: str,
    status: BookingStatus | None,
    *,
    action: str,
    csrf: str,
    extend: Sequence[Choice],
    notice: str | None = None,
    error: str | None = None,
    back: str,
    now: datetime,
) -> str:
    """A reservation reached through its link: cancel it or extend the loan."""
    body = [_alert(error)]
    if notice:
        body.append(f'<div class="done" role="status"><p>{escape(notice)}</p></div>')
    if status is None:
        if not notice:
            body.append(f"<p>{escape(text(lang, 'ended'))}</p>")
        body.append(f'<p><a href="{escape(back)}?lang={lang}">{escape(text(lang, "back"))}</a></p>')
        return _page(lang, site, text(lang, "manage_title"), "".join(body), "")
    item = item_name(lang, status.item_type, status.item)
    body.append(
        "<p>"
        + escape(
            text(
                lang,
                f"state_{status.state}",
                item=item,
                bank=status.bank.name,
                compartment=status.compartment,
                until=clock(lang, status.until, now),
            )
        )
        + "</p>"
        + f"<p>{escape(text(lang, 'codes_not_again'))}</p>"
        + _map_link(lang, status.bank)
    )
    hidden = (
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<input type="hidden" name="lang" value="{lang}">'
    )
    if status.can_extend and extend:
        body.append(
            f'<form method="post" action="{escape(action)}">{hidden}'
            '<input type="hidden" name="do" value="extend">'
            + _select("minutes", text(lang, "extend_by"), "", extend, extend[0].value)
            + f'<button type="submit">{escape(text(lang, "extend"))}</button></form>'
        )
    if status.can_cancel:
        body.append(
            f'<form method="post" action="{escape(action)}">{hidden}'
            '<input type="hidden" name="do" value="cancel">'
            f'<button type="submit" class="secondary">{escape(text(lang, "cancel"))}</button>'
            "</form>"
        )
    return _page(lang, site, text(lang, "manage_title"), "".join(body), "")


def render_message(lang: str, site: str | None, title_key: str, message: str) -> str:
    """A page that only says something (not found, refused, too many requests)."""
    return _page(
        lang,
        site or "",
        text(lang, title_key),
        f'<div class="alert" role="alert"><p>{escape(message)}</p></div>',
        None,
    )
