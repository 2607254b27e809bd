"""Config flow for a site, its options, and subentry flows for its assets."""

from __future__ import annotations

from typing import Any, Literal

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_LATITUDE, CONF_LONGITUDE, CONF_NAME
from homeassistant.core import callback
from homeassistant.helpers import selector
import probatio as vol

from .const import (
    CONF_CHIRPSTACK_TOPIC,
    CONF_DEPOT,
    CONF_DEVICE,
    CONF_DUE_HORIZON_H,
    CONF_FULL_THRESHOLD,
    CONF_NATIVE_BASE,
    CONF_SOURCE_KIND,
    CONF_TTN_TOPIC,
    CONF_ZIGBEE2MQTT_BASE,
    DEFAULT_DUE_HORIZON_H,
    DEFAULT_FULL_THRESHOLD,
    DOMAIN,
    SUBENTRY_CONTAINER,
    TOPIC_DEFAULTS_DATA,
)
from .model.assets import container_params, coordinates, source_binding
from .model.container import WasteKind
from .sources.reading import SourceKind

TOPIC_DEFAULTS = TOPIC_DEFAULTS_DATA
_TEXT = selector.TextSelector()


def _mqtt_ready(flow: ConfigFlow) -> bool:
    """MQTT must be set up: every source of the site arrives through it."""
    return bool(flow.hass.config_entries.async_loaded_entries("mqtt"))


def _topics_schema(values: dict[str, Any]) -> dict[vol.Marker, Any]:
    return {
        vol.Required(key, default=values.get(key, default)): _TEXT
        for key, default in TOPIC_DEFAULTS.items()
    }


def _topic_errors(user_input: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for key in (CONF_ZIGBEE2MQTT_BASE, CONF_NATIVE_BASE):
        base = str(user_input.get(key, ""))
        if not base or any(char in base for char in "+#") or base.endswith("/"):
            errors[key] = "invalid_base_topic"
    for key in (CONF_TTN_TOPIC, CONF_CHIRPSTACK_TOPIC):
        topic = str(user_input.get(key, ""))
        if not topic or "#" in topic[:-1] or not topic.endswith("up"):
            errors[key] = "invalid_uplink_topic"
    return errors


class CityOpsConfigFlow(ConfigFlow, domain=DOMAIN):
    """Create a site; only its name is asked, everything else has defaults."""

    VERSION = 1

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> CityOpsOptionsFlow:
        """Return the options flow (thresholds, depot)."""
        return CityOpsOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Assets of a site."""
        return {SUBENTRY_CONTAINER: ContainerSubentryFlow}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the site's name."""
        if not _mqtt_ready(self):
            return self.async_abort(reason="mqtt_not_configured")
        errors: dict[str, str] = {}
        if user_input is not None:
            name = user_input[CONF_NAME].strip()
            if not name:
                errors[CONF_NAME] = "name_required"
            else:
                self._async_abort_entries_match({CONF_NAME: name})
                return self.async_create_entry(
                    title=name,
                    data={CONF_NAME: name, **TOPIC_DEFAULTS},
                    options={
                        CONF_FULL_THRESHOLD: DEFAULT_FULL_THRESHOLD,
                        CONF_DUE_HORIZON_H: DEFAULT_DUE_HORIZON_H,
                    },
                )
        return self.async_show_form(
            step_id="user",
            data_schema=vol.Schema({vol.Required(CONF_NAME): _TEXT}),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the site's name and where its devices publish."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            name = user_input[CONF_NAME].strip()
            errors = _topic_errors(user_input)
            if not name:
                errors[CONF_NAME] = "name_required"
            if not errors:
                return self.async_update_reload_and_abort(
                    entry, title=name, data={**user_input, CONF_NAME: name}
                )
        values = {**entry.data, **(user_input or {})}
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_NAME, default=values.get(CONF_NAME, entry.title)): _TEXT,
                    **_topics_schema(values),
                }
            ),
            errors=errors,
        )


class CityOpsOptionsFlow(OptionsFlow):
    """Behaviour of a site: full threshold, how far ahead to plan, the depot."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show and store the options."""
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        options = self.config_entry.options
        hass = self.hass
        depot = options.get(
            CONF_DEPOT, {"latitude": hass.config.latitude, "longitude": hass.config.longitude}
        )
        return self.async_show_form(
            step_id="init",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_FULL_THRESHOLD,
                        default=options.get(CONF_FULL_THRESHOLD, DEFAULT_FULL_THRESHOLD),
                    ): selector.NumberSelector(
                        selector.NumberSelectorConfig(
                            min=30, max=100, step=1, unit_of_measurement="%"
                        )
                    ),
                    vol.Required(
                        CONF_DUE_HORIZON_H,
                        default=options.get(CONF_DUE_HORIZON_H, DEFAULT_DUE_HORIZON_H),
                    ): selector.NumberSelector(
                        selector.NumberSelectorConfig(
                            min=0, max=168, step=1, unit_of_measurement="h"
                        )
                    ),
                    vol.Required(CONF_DEPOT, default=depot): selector.LocationSelector(),
                }
            ),
        )


def _container_schema(values: dict[str, Any], hass_lat: float, hass_lon: float) -> vol.Schema:
    def number(
        low: float, high: float, unit: str | None = None, step: float | Literal["any"] = 1
    ) -> selector.NumberSelector:
        config = selector.NumberSelectorConfig(
            min=low, max=high, step=step, mode=selector.NumberSelectorMode.BOX
        )
        if unit is not None:
            config["unit_of_measurement"] = unit
        return selector.NumberSelector(config)

    return vol.Schema(
        {
            vol.Required(CONF_NAME, default=values.get(CONF_NAME, vol.UNDEFINED)): _TEXT,
            vol.Required(CONF_LATITUDE, default=values.get(CONF_LATITUDE, hass_lat)): number(
                -90, 90, "°", step="any"
            ),
            vol.Required(CONF_LONGITUDE, default=values.get(CONF_LONGITUDE, hass_lon)): number(
                -180, 180, "°", step="any"
            ),
            vol.Required(
                "waste_kind", default=values.get("waste_kind", WasteKind.RESIDUAL.value)
            ): selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=[kind.value for kind in WasteKind],
                    translation_key="waste_kind",
                    mode=selector.SelectSelectorMode.DROPDOWN,
                )
            ),
            vol.Required("volume_l", default=values.get("volume_l", 1100)): number(1, 100_000, "L"),
            vol.Required("depth_mm", default=values.get("depth_mm", 1200)): number(
                50, 10_000, "mm"
            ),
            vol.Required("sensor_offset_mm", default=values.get("sensor_offset_mm", 100)): number(
                0, 5_000, "mm"
            ),
            vol.Required(
                "report_interval_s", default=values.get("report_interval_s", 3600)
            ): number(10, 7 * 86_400, "s"),
            vol.Required(
                CONF_SOURCE_KIND, default=values.get(CONF_SOURCE_KIND, SourceKind.TTN.value)
            ): selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=[kind.value for kind in SourceKind],
                    translation_key="source_kind",
                    mode=selector.SelectSelectorMode.DROPDOWN,
                )
            ),
            vol.Required(CONF_DEVICE, default=values.get(CONF_DEVICE, vol.UNDEFINED)): _TEXT,
        }
    )


class ContainerSubentryFlow(ConfigSubentryFlow):
    """Add or reconfigure a waste container."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Add a container."""
        return await self._async_container_form("user", user_input, None)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a container."""
        return await self._async_container_form(
            "reconfigure", user_input, self._get_reconfigure_subentry().subentry_id
        )

    async def _async_container_form(
        self, step_id: str, user_input: dict[str, Any] | None, editing: str | None
    ) -> SubentryFlowResult:
        entry = self._get_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = self._validate(entry, user_input, editing)
            if not errors:
                unique_id = f"{data[CONF_SOURCE_KIND]}:{data[CONF_DEVICE]}"
                if editing is None:
                    return self.async_create_entry(
                        title=data[CONF_NAME], data=data, unique_id=unique_id
                    )
                subentry = self._get_reconfigure_subentry()
                data["extra"] = dict(subentry.data.get("extra") or {})
                return self.async_update_and_abort(
                    entry, subentry, title=data[CONF_NAME], data=data, unique_id=unique_id
                )
        if user_input is not None:
            values = user_input
        elif editing is not None:
            values = dict(self._get_reconfigure_subentry().data)
        else:
            values = {}
        return self.async_show_form(
            step_id=step_id,
            data_schema=_container_schema(
                values, self.hass.config.latitude, self.hass.config.longitude
            ),
            errors=errors,
        )

    @staticmethod
    def _validate(
        entry: ConfigEntry, user_input: dict[str, Any], editing: str | None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        data: dict[str, Any] = {"name": str(user_input[CONF_NAME]).strip()}
        if not data["name"] or len(data["name"]) > 64:
            errors[CONF_NAME] = "name_required"
        try:
            data[CONF_LATITUDE], data[CONF_LONGITUDE] = coordinates(
                user_input[CONF_LATITUDE], user_input[CONF_LONGITUDE]
            )
        except ValueError:
            errors[CONF_LATITUDE] = "invalid_location"
        try:
            data[CONF_SOURCE_KIND], data[CONF_DEVICE] = source_binding(
                {"kind": user_input[CONF_SOURCE_KIND], "device": user_input[CONF_DEVICE]}
            )
        except ValueError:
            errors[CONF_DEVICE] = "invalid_device"
        try:
            data.update(container_params(user_input))
        except ValueError:
            errors["base"] = "invalid_geometry"
        for subentry_id, subentry in entry.subentries.items():
            if subentry_id == editing:
                continue
            if str(subentry.data.get(CONF_NAME, "")).casefold() == data["name"].casefold():
                errors[CONF_NAME] = "name_taken"
            if (
                not errors.get(CONF_DEVICE)
                and subentry.data.get(CONF_SOURCE_KIND) == data.get(CONF_SOURCE_KIND)
                and subentry.data.get(CONF_DEVICE) == data.get(CONF_DEVICE)
            ):
                errors[CONF_DEVICE] = "device_taken"
        data.setdefault("extra", {})
        return data, errors
