"""The operations console: the dashboard strategy module and the map markers it shows."""

from __future__ import annotations

from datetime import datetime
import hashlib
from pathlib import Path
from typing import Final

from aiohttp import web
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import HomeAssistantView

from .model.container import Container
from .model.lighting import Mast

STRATEGY_FILE = Path(__file__).parent / "frontend" / "city-ops-strategy.js"
STRATEGY_URL = "/city_ops/city-ops-strategy.js"
MARKER_URL = "/city_ops/marker"

# State classes of the map markers: (fill colour, text colour). The built-in map card draws an
# entity's `entity_picture` inside its marker and offers no per-marker colour, so each asset's
# map entity carries a small picture of its state; tiles and rows show the same picture.
MARKER_COLOURS: Final = {
    "alarm": ("#b71c1c", "#ffffff"),
    "full": ("#d32f2f", "#ffffff"),
    "almost_full": ("#ef6c00", "#ffffff"),
    "ok": ("#2e7d32", "#ffffff"),
    "empty": ("#2e7d32", "#ffffff"),
    "offline": ("#9e9e9e", "#ffffff"),
    "fault": ("#b71c1c", "#ffffff"),
    "boosted": ("#ffb300", "#212121"),
    "base": ("#fff176", "#212121"),
    "dark": ("#283593", "#ffffff"),
}
# Alarms and faults show a sign instead of a number: what matters is that something is wrong.
SIGNED = frozenset({"alarm", "fault"})
NO_LABEL = "-"


def container_marker(container: Container) -> str:
    """The marker of a container: fire or tilt first, then not reporting, then how full."""
    status = container.status
    level = status.fill_level
    if status.fire_alarm or status.tilted:
        return marker_url("alarm", level)
    if not status.online or level is None:
        return marker_url("offline", None)
    # A FillState is the string of its value (no `.value` lookup on every reading).
    return marker_url(status.fill_state or "ok", level)


def mast_marker(mast: Mast, now: datetime) -> str:
    """The marker of a mast: not reporting, a lamp fault, then what the lamp does."""
    if not mast.online:
        return marker_url("offline", None)
    if mast.status.faults:
        return marker_url("fault", None)
    level = mast.level()
    if level <= 0:
        return marker_url("dark", None)
    return marker_url("boosted" if mast.boosted(now) else "base", level)


def marker_url(state: str, level: float | None) -> str:
    """Where the frontend fetches a marker (whole percent, so a marker is shared widely)."""
    label = NO_LABEL if level is None or state in SIGNED else str(round(level))
    return f"{MARKER_URL}/{state}/{label}.svg"


def marker_svg(state: str, label: str) -> str | None:
    """The marker picture; None for a state or label the console never asks for."""
    colours = MARKER_COLOURS.get(state)
    if colours is None:
        return None
    if state in SIGNED:
        text = "!"
    elif label == NO_LABEL:
        text = ""
    elif label.isdigit() and len(label) <= 3 and int(label) <= 100:
        text = str(int(label))
    else:
        return None
    background, foreground = colours
    size = 22 if len(text) < 3 else 17
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="48" height="48" viewBox="0 0 48 48">'
        f'<rect width="48" height="48" fill="{background}"/>'
        f'<text x="24" y="24" dy="0.35em" text-anchor="middle" fill="{foreground}" '
        'font-family="Roboto, Noto Sans, Arial, sans-serif" font-weight="700" '
        f'font-size="{size}">{text}</text></svg>'
    )


class MarkerView(HomeAssistantView):
    """The map markers: a picture in the CSS background carries no login, and tells nothing."""

    url = MARKER_URL + "/{state}/{label}.svg"
    name = "city_ops:marker"
    requires_auth = False

    async def get(self, request: web.Request, state: str, label: str) -> web.Response:
        """Draw one marker."""
        svg = marker_svg(state, label)
        if svg is None:
            return web.Response(status=404)
        return web.Response(
            text=svg,
            content_type="image/svg+xml",
            headers={"Cache-Control": "public, max-age=86400"},
        )


async def async_register_console(hass: HomeAssistant) -> None:
    """Serve the strategy and have every frontend load it (dashboards use `custom:city-ops`)."""
    if "frontend" not in hass.config.components:
        return  # a headless installation has no dashboards to generate
    from homeassistant.components.frontend import add_extra_js_url  # noqa: PLC0415
    from homeassistant.components.http.server import StaticPathConfig  # noqa: PLC0415

    source = await hass.async_add_executor_job(STRATEGY_FILE.read_bytes)
    await hass.http.async_register_static_paths(
        [StaticPathConfig(STRATEGY_URL, str(STRATEGY_FILE), cache_headers=False)]
    )
    hass.http.register_view(MarkerView())
    # The content hash in the URL makes browsers fetch a changed module after an update.
    add_extra_js_url(hass, f"{STRATEGY_URL}?v={hashlib.sha256(source).hexdigest()[:12]}")
