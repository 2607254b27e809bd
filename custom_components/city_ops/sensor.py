"""Sensors of containers (fill, state, emptying, prediction, battery, heat) and of the site."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
import heapq
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    ATTR_LATITUDE,
    ATTR_LONGITUDE,
    LIGHT_LUX,
    PERCENTAGE,
    EntityCategory,
    Platform,
    UnitOfEnergy,
    UnitOfPower,
    UnitOfTemperature,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .budget import Planned
from .console import container_marker
from .entity import CompartmentEntity, ContainerEntity, LockerBankEntity, MastEntity, SiteEntity
from .lending import BOOKING_REFERENCES, compartment_data
from .model.container import Container, ContainerSpec, FillState
from .model.lighting import Lighting, Mast
from .model.locker import LoanState
from .runtime import CityOpsConfigEntry, CityOpsRuntime

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class ContainerSensorDescription(SensorEntityDescription):
    """A container sensor and how to read its value from the model."""

    value_fn: Callable[[Container, float], float | str | datetime | None]
    attributes_fn: Callable[[Container], dict[str, Any]] | None = None
    # The sensor that stands for the container on the map: where it is, and its marker.
    on_map: bool = False


def _fill_attributes(container: Container) -> dict[str, Any]:
    """What an operator reads beside the level (where it stands: capability attributes).

    Fill state and alarm ride on the fill level so that a container costs the site one
    enabled entity; their own entities exist, disabled by default.
    """
    status = container.status
    return {
        "fill_state": status.fill_state,
        # The console's low-battery list reads it here: the battery entity is off by default.
        "battery": status.battery,
        # Fire before tilt: the more urgent one.
        "alarm": "fire" if status.fire_alarm else "tilted" if status.tilted else "none",
    }


CONTAINER_SENSORS: tuple[ContainerSensorDescription, ...] = (
    ContainerSensorDescription(
        key="fill_level",
        translation_key="fill_level",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda container, _: container.status.fill_level,
        attributes_fn=_fill_attributes,
        on_map=True,
    ),
    ContainerSensorDescription(
        key="fill_state",
        translation_key="fill_state",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in FillState],
        value_fn=lambda container, _: container.status.fill_state,
    ),
    ContainerSensorDescription(
        key="last_emptied",
        translation_key="last_emptied",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda container, _: container.status.last_emptied,
    ),
    ContainerSensorDescription(
        key="predicted_full",
        translation_key="predicted_full",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda container, full_at: container.predicted_full(full_at),
    ),
    ContainerSensorDescription(
        key="battery",
        translation_key="battery",
        device_class=SensorDeviceClass.BATTERY,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda container, _: container.status.battery,
    ),
    ContainerSensorDescription(
        key="temperature",
        translation_key="temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda container, _: container.status.temperature,
    ),
)


# Energy counters to the watt-hour, as they are shown (3 decimals of kWh): a lit mast's estimate
# grows by a fraction of a watt-hour each minute, and a finer value would rewrite every mast's
# state (and a recorder row) on every minute tick with no change anybody sees. The running
# totals are rounded, never the increments, so nothing is lost over time.
ENERGY_DIGITS = 3
# An energy counter as Home Assistant's long-term statistics and energy dashboard take it.
ENERGY_COUNTER: dict[str, Any] = {
    "device_class": SensorDeviceClass.ENERGY,
    "native_unit_of_measurement": UnitOfEnergy.KILO_WATT_HOUR,
    "state_class": SensorStateClass.TOTAL_INCREASING,
    "suggested_display_precision": ENERGY_DIGITS,
}


@dataclass(frozen=True, kw_only=True)
class MastSensorDescription(SensorEntityDescription):
    """A mast sensor and how to read its value from the model."""

    value_fn: Callable[[Mast], float | None]
    # Whether the value was measured (else estimated); shown as the `source` attribute.
    measured_fn: Callable[[Mast], bool] | None = None


MAST_SENSORS: tuple[MastSensorDescription, ...] = (
    MastSensorDescription(
        key="illuminance",
        translation_key="illuminance",
        device_class=SensorDeviceClass.ILLUMINANCE,
        native_unit_of_measurement=LIGHT_LUX,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda mast: mast.status.illuminance_lx,
    ),
    MastSensorDescription(
        key="power",
        translation_key="power",
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda mast: round(mast.power_w()[0], 2),
        measured_fn=lambda mast: mast.power_w()[1],
    ),
    MastSensorDescription(
        key="energy",
        translation_key="energy",
        **ENERGY_COUNTER,
        value_fn=lambda mast: round(mast.status.energy_kwh, ENERGY_DIGITS),
        measured_fn=lambda mast: mast.status.measured_energy,
    ),
)


@dataclass(frozen=True, kw_only=True)
class SiteSensorDescription(SensorEntityDescription):
    """A site sensor, its value and its attributes."""

    value_fn: Callable[[CityOpsRuntime, datetime], int | float | None]
    attributes_fn: Callable[[CityOpsRuntime, datetime], dict[str, Any]] | None = None


MAX_LISTED = 50  # keeps the attribute far below the recorder's size limit


def _due_names(runtime: CityOpsRuntime, now: datetime) -> dict[str, Any]:
    due = runtime.waste.due
    containers = runtime.site.containers
    names = heapq.nsmallest(MAX_LISTED, (containers[asset_id].spec.name for asset_id in due))
    return {"containers": names, "more": max(0, len(due) - MAX_LISTED)}


def _alarms(runtime: CityOpsRuntime) -> dict[str, list[str]]:
    """Names of the containers on fire and of those tilted (a scan is ~1 ms per 5,000)."""
    fire: list[str] = []
    tilted: list[str] = []
    for container in runtime.site.containers.values():
        status = container.status
        if status.fire_alarm:
            fire.append(container.spec.name)
        if status.tilted:
            tilted.append(container.spec.name)
    return {"fire": sorted(fire), "tilted": sorted(tilted)}


def _alarm_names(runtime: CityOpsRuntime, _: datetime) -> dict[str, Any]:
    alarms = _alarms(runtime)
    return {kind: names[:MAX_LISTED] for kind, names in alarms.items()}


def _since(runtime: CityOpsRuntime) -> str | None:
    since = runtime.site.lighting.counting_since
    return since.isoformat() if since else None


SITE_SENSORS: tuple[SiteSensorDescription, ...] = (
    SiteSensorDescription(
        key="containers_due",
        translation_key="containers_due",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda runtime, _: len(runtime.waste.due),
        attributes_fn=_due_names,
    ),
    # Every container's alarms in one entity: per-container alarm entities would cost a
    # site thousands of its entities (see budget.py).
    SiteSensorDescription(
        key="container_alarms",
        translation_key="container_alarms",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda runtime, _: len(
            {name for names in _alarms(runtime).values() for name in names}
        ),
        attributes_fn=_alarm_names,
    ),
    SiteSensorDescription(
        key="lighting_energy",
        translation_key="lighting_energy",
        **ENERGY_COUNTER,
        value_fn=lambda runtime, _: round(runtime.site.lighting.counted[0], ENERGY_DIGITS),
    ),
    # Energy and reference are totals over the same intervals: the recorder's daily
    # statistics of both give any day's or month's savings as 1 - energy / reference.
    SiteSensorDescription(
        key="lighting_reference_energy",
        translation_key="lighting_reference_energy",
        **ENERGY_COUNTER,
        value_fn=lambda runtime, _: round(runtime.site.lighting.reference_kwh, ENERGY_DIGITS),
    ),
    SiteSensorDescription(
        key="lighting_savings",
        translation_key="lighting_savings",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda runtime, _: runtime.site.lighting.savings_percent(),
        attributes_fn=lambda runtime, _: {"since": _since(runtime)},
    ),
)


@dataclass(frozen=True, kw_only=True)
class PathSensorDescription(SensorEntityDescription):
    """A sensor of one path of the site: the site's lighting figures for its masts alone."""

    value_fn: Callable[[Lighting, str], float | None]
    since: bool = False  # whether the value counts from the start of counting


def _path_counted(lighting: Lighting, path: str, index: int) -> float | None:
    counted = lighting.counted_by_path.get(path)
    return None if counted is None else round(counted[index], ENERGY_DIGITS)


# The same accounting as the site's three (see Lighting.tick), split by path.
PATH_SENSORS: tuple[PathSensorDescription, ...] = (
    PathSensorDescription(
        key="path_savings",
        translation_key="path_savings",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda lighting, path: lighting.savings_percent(path),
        since=True,
    ),
    PathSensorDescription(
        key="path_energy",
        translation_key="path_energy",
        **ENERGY_COUNTER,
        value_fn=lambda lighting, path: _path_counted(lighting, path, 0),
    ),
    PathSensorDescription(
        key="path_reference_energy",
        translation_key="path_reference_energy",
        **ENERGY_COUNTER,
        value_fn=lambda lighting, path: _path_counted(lighting, path, 1),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CityOpsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Hand the site's budget what builds each sensor; it decides which ones exist."""
    containers = {description.key: description for description in CONTAINER_SENSORS}
    masts = {description.key: description for description in MAST_SENSORS}
    site = {description.key: description for description in SITE_SENSORS}
    paths = {description.key: description for description in PATH_SENSORS}

    def build(planned: Planned) -> Entity:
        key, asset_id = planned.slot.key, planned.asset_id
        if planned.path is not None:
            return PathSensor(entry, paths[key], planned.path, planned.unique_id(entry.entry_id))
        if asset_id is None:
            return SiteSensor(entry, site[key])
        if key in containers:
            return ContainerSensor(entry, asset_id, containers[key])
        if key in masts:
            return MastSensor(entry, asset_id, masts[key])
        if planned.number is None:
            return ItemsAvailableSensor(entry, asset_id, ITEMS_AVAILABLE)
        return LoanStateSensor(entry, asset_id, LOAN_STATE, planned.number)

    await entry.runtime_data.budget.async_register(Platform.SENSOR, async_add_entities, build)


class ContainerSensor(ContainerEntity, SensorEntity):
    """A sensor of one container."""

    entity_description: ContainerSensorDescription
    _capabilities: tuple[ContainerSpec, dict[str, Any]] | None = None

    def __init__(
        self, entry: CityOpsConfigEntry, asset_id: str, description: ContainerSensorDescription
    ) -> None:
        """Bind to the container; what the description computes is looked up once."""
        super().__init__(entry, asset_id, description)
        self._site = self.runtime.site
        self._value_fn = description.value_fn
        self._attributes_fn = description.attributes_fn
        self._on_map = description.on_map

    def shown_value(self) -> object:
        """The model's value for this sensor, with its attributes where it has any."""
        container = self.container
        value = self._value_fn(container, self._site.settings.full_threshold)
        attributes_fn = self._attributes_fn
        return (value, attributes_fn(container) if attributes_fn else None)

    def shows(self) -> str:
        """The entity on the map pictures alarms and silence too: it follows every change."""
        return "" if self._on_map else super().shows()

    def marker(self) -> str | None:
        """How full, by colour, on the map."""
        return container_marker(self.container) if self._on_map else None

    @property
    def capability_attributes(self) -> dict[str, Any] | None:
        """Where the container stands: fixed, and kept while it is silent (grey on the map).

        Built once per spec (a moved container gets a new one), not on every state write.
        """
        if not self._on_map:
            return super().capability_attributes
        spec = self.container.spec
        built = self._capabilities
        if built is None or built[0] is not spec:
            built = self._capabilities = (
                spec,
                {
                    **(super().capability_attributes or {}),
                    ATTR_LATITUDE: spec.latitude,
                    ATTR_LONGITUDE: spec.longitude,
                    "waste_kind": spec.waste_kind.value,
                },
            )
        return built[1]

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The fill level's fill state and alarm."""
        return self._value[1]  # type: ignore[index,no-any-return]

    @property
    def native_value(self) -> float | str | datetime | None:
        """Return the value from the model."""
        return self._value[0]  # type: ignore[index,no-any-return]


class MastSensor(MastEntity, SensorEntity):
    """A sensor of one mast."""

    entity_description: MastSensorDescription

    def shown_value(self) -> object:
        """The model's value, with whether it was measured (a change there is a change too)."""
        description = self.entity_description
        measured = description.measured_fn(self.mast) if description.measured_fn else None
        return (description.value_fn(self.mast), measured)

    @property
    def native_value(self) -> float | None:
        """Return the value from the model."""
        return self.value[0]  # type: ignore[index,no-any-return]

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Say whether the value was measured or estimated from level x rated power."""
        measured = self.value[1]  # type: ignore[index]
        if measured is None:
            return None
        return {"source": "measured" if measured else "estimated"}


class SiteFigure(SiteEntity, SensorEntity):
    """A figure of the site; writes its state only when what it shows changed."""

    _shown: tuple[int | float | None, dict[str, Any] | None] = (None, None)

    def _compute(self) -> tuple[int | float | None, dict[str, Any] | None]:
        """The value and attributes to show now."""
        raise NotImplementedError

    async def async_added_to_hass(self) -> None:
        """Compute what to show before the first state write."""
        self._shown = self._compute()
        await super().async_added_to_hass()

    @callback
    def _site_changed(self) -> None:
        shown = self._compute()
        if shown != self._shown:
            self._shown = shown
            self.async_write_ha_state()

    @property
    def native_value(self) -> int | float | None:
        """Return the site value computed at the last change."""
        return self._shown[0]

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Return the names behind the number."""
        return self._shown[1]


class SiteSensor(SiteFigure):
    """A sensor of the whole site."""

    entity_description: SiteSensorDescription

    def _compute(self) -> tuple[int | float | None, dict[str, Any] | None]:
        description, now = self.entity_description, dt_util.utcnow()
        attributes = description.attributes_fn
        return (
            description.value_fn(self.runtime, now),
            None if attributes is None else attributes(self.runtime, now),
        )


class PathSensor(SiteFigure):
    """A lighting figure of one path (its masts), on the site's device."""

    entity_description: PathSensorDescription

    def __init__(
        self, entry: CityOpsConfigEntry, description: PathSensorDescription, path: str, uid: str
    ) -> None:
        """Name the sensor after its path; the budget decides its unique id."""
        super().__init__(entry, description)
        self.path = path
        self._attr_unique_id = uid
        self._attr_translation_placeholders = {"path": path}

    def _compute(self) -> tuple[int | float | None, dict[str, Any] | None]:
        description = self.entity_description
        # The dashboard groups the figures by this attribute.
        attributes: dict[str, Any] = {"path": self.path}
        if description.since:
            attributes["since"] = _since(self.runtime)
        return description.value_fn(self.runtime.site.lighting, self.path), attributes


LOAN_STATE = SensorEntityDescription(
    key="loan_state",
    translation_key="loan_state",
    device_class=SensorDeviceClass.ENUM,
    options=[state.value for state in LoanState],
)
ITEMS_AVAILABLE = SensorEntityDescription(
    key="items_available",
    translation_key="items_available",
    state_class=SensorStateClass.MEASUREMENT,
)


class LoanStateSensor(CompartmentEntity, SensorEntity):
    """What a compartment is doing: available, reserved, on loan, overdue, out of service."""

    def shown_value(self) -> object:
        """State and the booking's times (never a code, nor who booked)."""
        compartment = self.compartment
        data = {
            key: value
            for key, value in compartment_data(compartment, compartment.status.loan).items()
            if key not in BOOKING_REFERENCES
        }
        if data.get("loan_until"):
            # Collected: the time that matters is the return; the pickup window is history.
            data.pop("pickup_until", None)
        if compartment.status.out_of_service:
            data["reason"] = compartment.status.out_of_service_reason
        return data

    @property
    def native_value(self) -> str:
        """Return the lending state."""
        return self.value["state"]  # type: ignore[index,no-any-return]

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The item and, while booked, the booking."""
        return {k: v for k, v in self.value.items() if k != "state"}  # type: ignore[attr-defined]


class ItemsAvailableSensor(LockerBankEntity, SensorEntity):
    """How many items the bank can lend right now, in total and per item type."""

    def shown_value(self) -> object:
        """Counts per item type (every type of the bank, zero when none is free)."""
        return {**self._none_free, **self.bank.available()}

    @cached_property
    def _none_free(self) -> dict[str, int]:
        """Every item type of the bank at zero (the compartments are fixed while it runs)."""
        return dict.fromkeys(sorted({c.spec.item_type for c in self.bank.compartments.values()}), 0)

    @property
    def native_value(self) -> int:
        """Return the number of lendable items."""
        return sum(self.value.values())  # type: ignore[attr-defined]

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Counts per item type, and where the bank stands."""
        spec = self.bank.spec
        return {
            "by_item_type": dict(self.value),  # type: ignore[call-overload]
            ATTR_LATITUDE: spec.latitude,
            ATTR_LONGITUDE: spec.longitude,
        }
