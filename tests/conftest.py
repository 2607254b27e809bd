"""Shared fixtures; importing the package first lets phcc find our custom integration."""

from __future__ import annotations

import pytest

import custom_components.city_ops  # noqa: F401  (see TOOLCHAIN.md: must be imported before hass)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/city_ops in every HA-level test."""
