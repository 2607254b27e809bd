"""Plain pytest: the code under test never touches Home Assistant, so no `hass` is started."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the package-wide fixture, which would start a `hass` for every test."""
