"""Binary sensors: fire and tilt of containers, motion and lamp faults of masts, lockers' doors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .budget import Planned
from .entity import CompartmentEntity, ContainerEntity, MastEntity
from .model.container import Container
from .model.lighting import Lighting, Mast
from .model.locker import Compartment
from .runtime import CityOpsConfigEntry

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class ContainerBinarySensorDescription(BinarySensorEntityDescription):
    """A container binary sensor and how to read it from the model."""

    is_on_fn: Callable[[Container], bool | None]


CONTAINER_BINARY_SENSORS: tuple[ContainerBinarySensorDescription, ...] = (
    ContainerBinarySensorDescription(
        key="fire_alarm",
        translation_key="fire_alarm",
        device_class=BinarySensorDeviceClass.HEAT,
        is_on_fn=lambda container: container.status.fire_alarm,
    ),
    ContainerBinarySensorDescription(
        key="tilt",
        translation_key="tilt",
        device_class=BinarySensorDeviceClass.PROBLEM,
        is_on_fn=lambda container: container.status.tilted,
    ),
)


@dataclass(frozen=True, kw_only=True)
class MastBinarySensorDescription(BinarySensorEntityDescription):
    """A mast binary sensor and how to read it (and its attributes) from the model."""

    is_on_fn: Callable[[Mast], bool | None]
    attributes_fn: Callable[[Mast, Lighting], dict[str, Any]] | None = None
    # Shown while the mast is unreachable: it is what says so.
    always_available: bool = False


def _movement_attributes(mast: Mast, lighting: Lighting) -> dict[str, Any]:
    """Where the person seen here came from, which way and how fast they go (else None)."""
    movement = lighting.movement(mast.spec.name, dt_util.utcnow())
    if movement is None:
        return {"came_from": None, "heading": None, "speed": None}
    return {
        "came_from": movement.came_from,
        "heading": round(movement.bearing_deg),
        "speed": round(movement.speed_mps, 1),
    }


def _fault_attributes(mast: Mast, _lighting: Lighting) -> dict[str, Any]:
    """Which fault (TALQ LampMonitor kind), since when, and every fault the mast has."""
    fault = mast.fault()
    return {
        "fault_kind": fault[0].value if fault else None,
        "since": fault[1].isoformat() if fault else None,
        "faults": sorted(kind.value for kind in mast.status.faults),
    }


MAST_BINARY_SENSORS: tuple[MastBinarySensorDescription, ...] = (
    MastBinarySensorDescription(
        key="motion",
        translation_key="motion",
        device_class=BinarySensorDeviceClass.MOTION,
        is_on_fn=lambda mast: mast.status.motion,
        attributes_fn=_movement_attributes,
    ),
    MastBinarySensorDescription(
        key="lamp_fault",
        translation_key="lamp_fault",
        device_class=BinarySensorDeviceClass.PROBLEM,
        # Faults are judged on reports and on the minute tick; the sensor shows the verdict.
        is_on_fn=lambda mast: bool(mast.status.faults),
        attributes_fn=_fault_attributes,
        always_available=True,
    ),
)


@dataclass(frozen=True, kw_only=True)
class CompartmentBinarySensorDescription(BinarySensorEntityDescription):
    """A compartment binary sensor and how to read it from the model."""

    is_on_fn: Callable[[Compartment], bool | None]


COMPARTMENT_BINARY_SENSORS: tuple[CompartmentBinarySensorDescription, ...] = (
    CompartmentBinarySensorDescription(
        key="door",
        translation_key="door",
        device_class=BinarySensorDeviceClass.DOOR,
        is_on_fn=lambda compartment: compartment.status.door_open,
    ),
    CompartmentBinarySensorDescription(
        key="item",
        translation_key="item",
        is_on_fn=lambda compartment: compartment.status.item_present,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CityOpsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Hand the site's budget what builds each binary sensor; it decides which ones exist."""
    containers = {description.key: description for description in CONTAINER_BINARY_SENSORS}
    masts = {description.key: description for description in MAST_BINARY_SENSORS}
    compartments = {description.key: description for description in COMPARTMENT_BINARY_SENSORS}

    def build(planned: Planned) -> Entity:
        key, asset_id = planned.slot.key, planned.asset_id or ""
        if key in containers:
            return ContainerBinarySensor(entry, asset_id, containers[key])
        if key in masts:
            return MastBinarySensor(entry, asset_id, masts[key])
        return CompartmentBinarySensor(entry, asset_id, compartments[key], planned.number or 0)

    await entry.runtime_data.budget.async_register(
        Platform.BINARY_SENSOR, async_add_entities, build
    )


class ContainerBinarySensor(ContainerEntity, BinarySensorEntity):
    """A binary sensor of one container."""

    entity_description: ContainerBinarySensorDescription

    def shown_value(self) -> object:
        """The model's value for this sensor."""
        return self.entity_description.is_on_fn(self.container)

    @property
    def is_on(self) -> bool | None:
        """Return the state from the model."""
        return self.value  # type: ignore[return-value]


class MastBinarySensor(MastEntity, BinarySensorEntity):
    """A binary sensor of one mast."""

    entity_description: MastBinarySensorDescription

    def shown_value(self) -> object:
        """The model's value for this sensor."""
        description = self.entity_description
        attributes = (
            description.attributes_fn(self.mast, self.runtime.site.lighting)
            if description.attributes_fn
            else None
        )
        return (description.is_on_fn(self.mast), attributes)

    @property
    def available(self) -> bool:
        """Unreachable masts are unavailable, except for what reports them unreachable."""
        return self.entity_description.always_available or super().available

    @property
    def is_on(self) -> bool | None:
        """Return the state from the model."""
        return self.value[0]  # type: ignore[index,no-any-return]

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The fault's kind and since when; the movement seen by a motion sensor."""
        return self.value[1]  # type: ignore[index,no-any-return]


class CompartmentBinarySensor(CompartmentEntity, BinarySensorEntity):
    """A binary sensor of one compartment."""

    entity_description: CompartmentBinarySensorDescription

    def shown_value(self) -> object:
        """The model's value for this sensor."""
        return self.entity_description.is_on_fn(self.compartment)

    @property
    def is_on(self) -> bool | None:
        """Return the state from the model."""
        return self.value  # type: ignore[return-value]
