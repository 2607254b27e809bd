"""The luminaire of each lighting mast."""

from __future__ import annotations

from typing import Any

from homeassistant.components.light import LightEntity, LightEntityDescription
from homeassistant.components.light.const import (
    ATTR_BRIGHTNESS,
    ATTR_TRANSITION,
    ColorMode,
    LightEntityFeature,
)
from homeassistant.const import ATTR_LATITUDE, ATTR_LONGITUDE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from . import delivery
from .console import mast_marker
from .const import DOMAIN
from .entity import MastEntity
from .permissions import Action
from .runtime import CityOpsConfigEntry

PARALLEL_UPDATES = 0

LUMINAIRE = LightEntityDescription(key="light", translation_key="light", name=None)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CityOpsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Hand the site's budget what builds a mast's luminaire."""
    await entry.runtime_data.budget.async_register(
        Platform.LIGHT,
        async_add_entities,
        lambda planned: MastLight(entry, planned.asset_id or "", LUMINAIRE),
    )


class MastLight(MastEntity, LightEntity):
    """Dimmable luminaire; set by hand it keeps that level for an hour, then the profile rules."""

    _attr_name = None  # the luminaire is the mast: it carries the device's name
    _attr_color_mode = ColorMode.BRIGHTNESS
    _attr_supported_color_modes = {ColorMode.BRIGHTNESS}  # noqa: RUF012 (HA's declaration)
    _attr_supported_features = LightEntityFeature.TRANSITION

    def shown_value(self) -> object:
        """Level in % as reported (or commanded), and whether the mast counts as dark.

        `dark` is what automations check before a boost, so a change of it alone is a change.
        """
        status = self.mast.status
        return (
            self.mast.level(),
            self.mast.is_dark(self.runtime.lighting.sun_down()),
            status.commanded_level,
            status.boost_until,
            status.override_until,
        )

    @property
    def _level(self) -> float:
        return float(self.value[0])  # type: ignore[index]

    @property
    def is_on(self) -> bool:
        """On when the level is above zero."""
        return self._level > 0

    @property
    def brightness(self) -> int | None:
        """Brightness 0-255 from the level."""
        level = self._level
        return round(level * 255 / 100) if level > 0 else None

    def marker(self) -> str:
        """What the lamp does, by colour, on the map."""
        return mast_marker(self.mast, dt_util.utcnow())

    @property
    def capability_attributes(self) -> dict[str, Any]:
        """Where the mast stands and its path: fixed, and kept while it is offline."""
        spec = self.mast.spec
        return {
            **super().capability_attributes,
            "path": spec.path,
            ATTR_LATITUDE: spec.latitude,
            ATTR_LONGITUDE: spec.longitude,
        }

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Why the lamp is at its level."""
        return {
            "dark": self.value[1],  # type: ignore[index]
            "commanded_level": self.value[2],  # type: ignore[index]
            "boost_until": self.value[3],  # type: ignore[index]
            "override_until": self.value[4],  # type: ignore[index]
        }

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Switch on or dim by hand."""
        await self.async_permit(Action.OPERATE)
        self._check_reachable()
        brightness = kwargs.get(ATTR_BRIGHTNESS, 255)
        level = round(brightness * 100 / 255, 1)
        self.runtime.lighting.set_by_hand(self.asset_id, level, kwargs.get(ATTR_TRANSITION))

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Switch off by hand."""
        await self.async_permit(Action.OPERATE)
        self._check_reachable()
        self.runtime.lighting.set_by_hand(self.asset_id, 0.0, kwargs.get(ATTR_TRANSITION))

    def _check_reachable(self) -> None:
        """A command that cannot leave fails the action instead of answering done."""
        source_kind = self.runtime.assets[self.asset_id].source_kind
        if not delivery.reachable(self.hass, source_kind, self.runtime.lighting.zha):
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="mast_unreachable",
                translation_placeholders={"mast": self.mast.spec.name},
            )
