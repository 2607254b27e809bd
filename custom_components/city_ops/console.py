"""The operations console: the dashboard strategy module the integration serves to the frontend."""

from __future__ import annotations

import hashlib
from pathlib import Path

from homeassistant.core import HomeAssistant

STRATEGY_FILE = Path(__file__).parent / "frontend" / "city-ops-strategy.js"
STRATEGY_URL = "/city_ops/city-ops-strategy.js"


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
    # The content hash in the URL makes browsers fetch a changed module after an update.
    add_extra_js_url(hass, f"{STRATEGY_URL}?v={hashlib.sha256(source).hexdigest()[:12]}")
