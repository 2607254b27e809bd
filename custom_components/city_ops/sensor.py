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
    UnitOfEnergy,
    UnitOfPower,
    UnitOfTemperature,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .const import SUBENTRY_CONTAINER, SUBENTRY_LOCKER_BANK, SUBENTRY_MAST
from .entity import CompartmentEntity, ContainerEntity, LockerBankEntity, MastEntity, SiteEntity
from .lending import BOOKING_REFERENCES, compartment_data
from .model.container import Container, FillState
from .model.lighting import Mast
from .model.locker import LoanState
from .runtime import CityOpsConfigEntry, CityOpsRuntime

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class ContainerSensorDescription(SensorEntityDescription):
    """A container sensor and how to read its value from the model."""

    value_fn: Callable[[Container, float], float | str | datetime | None]


CONTAINER_SENSORS: tuple[ContainerSensorDescription, ...] = (
    ContainerSensorDescription(
        key="fill_level",
        translation_key="fill_level",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda container, _: container.status.fill_level,
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
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=3,
        value_fn=lambda mast: round(mast.status.energy_kwh, 4),
        measured_fn=lambda mast: mast.status.measured_energy,
    ),
)


@dataclass(frozen=True, kw_only=True)
class SiteSensorDescription(SensorEntityDescription):
    """A site sensor, its value and its attributes."""

    value_fn: Callable[[CityOpsRuntime, datetime], int | float | None]
    attributes_fn: Callable[[CityOpsRuntime, datetime], dict[str, Any]] | None = None
    has_fn: Callable[[CityOpsRuntime], bool] = lambda _: True


MAX_LISTED = 50  # keeps the attribute far below the recorder's size limit


def _due_names(runtime: CityOpsRuntime, now: datetime) -> dict[str, Any]:
    due = runtime.waste.due
    containers = runtime.site.containers
    names = heapq.nsmallest(MAX_LISTED, (containers[asset_id].spec.name for asset_id in due))
    return {"containers": names, "more": max(0, len(due) - MAX_LISTED)}


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
    SiteSensorDescription(
        key="lighting_energy",
        translation_key="lighting_energy",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=3,
        value_fn=lambda runtime, _: round(runtime.site.lighting.counted[0], 4),
        has_fn=lambda runtime: bool(runtime.site.masts),
    ),
    # Energy and reference are totals over the same intervals: the recorder's daily
    # statistics of both give any day's or month's savings as 1 - energy / reference.
    SiteSensorDescription(
        key="lighting_reference_energy",
        translation_key="lighting_reference_energy",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=3,
        value_fn=lambda runtime, _: round(runtime.site.lighting.reference_kwh, 4),
        has_fn=lambda runtime: bool(runtime.site.masts),
    ),
    SiteSensorDescription(
        key="lighting_savings",
        translation_key="lighting_savings",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda runtime, _: runtime.site.lighting.savings_percent(),
        attributes_fn=lambda runtime, _: {"since": _since(runtime)},
        has_fn=lambda runtime: bool(runtime.site.masts),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CityOpsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the site sensors and each container's sensors (in the container's subentry)."""
    async_add_entities(
        SiteSensor(entry, description)
        for description in SITE_SENSORS
        if description.has_fn(entry.runtime_data)
    )
    for asset_id, subentry in entry.subentries.items():
        if subentry.subentry_type == SUBENTRY_CONTAINER:
            async_add_entities(
                (
                    ContainerSensor(entry, asset_id, description)
                    for description in CONTAINER_SENSORS
                ),
                config_subentry_id=asset_id,
            )
        elif subentry.subentry_type == SUBENTRY_MAST:
            async_add_entities(
                (MastSensor(entry, asset_id, description) for description in MAST_SENSORS),
                config_subentry_id=asset_id,
            )
        elif subentry.subentry_type == SUBENTRY_LOCKER_BANK:
            bank = entry.runtime_data.site.locker_banks[asset_id]
            async_add_entities(
                [
                    ItemsAvailableSensor(entry, asset_id, ITEMS_AVAILABLE),
                    *(
                        LoanStateSensor(entry, asset_id, LOAN_STATE, number)
                        for number in bank.compartments
                    ),
                ],
                config_subentry_id=asset_id,
            )


class ContainerSensor(ContainerEntity, SensorEntity):
    """A sensor of one container."""

    entity_description: ContainerSensorDescription

    def shown_value(self) -> object:
        """The model's value for this sensor."""
        return self.entity_description.value_fn(
            self.container, self.runtime.site.settings.full_threshold
        )

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Put the fill level on the map: where the container stands."""
        if self.entity_description.key != "fill_level":
            return None
        spec = self.container.spec
        return {
            ATTR_LATITUDE: spec.latitude,
            ATTR_LONGITUDE: spec.longitude,
            "waste_kind": spec.waste_kind.value,
        }

    @property
    def native_value(self) -> float | str | datetime | None:
        """Return the value from the model."""
        return self.value  # type: ignore[return-value]


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


class SiteSensor(SiteEntity, SensorEntity):
    """A sensor of the whole site; writes its state only when what it shows changed."""

    entity_description: SiteSensorDescription
    _shown: tuple[int | float | None, dict[str, Any] | None] = (None, None)

    def _compute(self) -> tuple[int | float | None, dict[str, Any] | None]:
        description, now = self.entity_description, dt_util.utcnow()
        attributes = description.attributes_fn
        return (
            description.value_fn(self.runtime, now),
            None if attributes is None else attributes(self.runtime, now),
        )

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
