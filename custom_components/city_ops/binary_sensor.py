"""Binary sensors: fire and tilt of containers, motion and lamp faults of masts, lockers' doors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .const import SUBENTRY_CONTAINER, SUBENTRY_LOCKER_BANK, SUBENTRY_MAST
from .entity import CompartmentEntity, ContainerEntity, MastEntity
from .model.container import Container
from .model.lighting import Mast
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
    """A mast binary sensor; `sun_down` tells whether the sun is below the horizon."""

    is_on_fn: Callable[[Mast, bool], bool | None]
    # The sun calculation costs ~50 µs; only sensors that depend on it pay for it.
    needs_sun: bool = False


MAST_BINARY_SENSORS: tuple[MastBinarySensorDescription, ...] = (
    MastBinarySensorDescription(
        key="motion",
        translation_key="motion",
        device_class=BinarySensorDeviceClass.MOTION,
        is_on_fn=lambda mast, _: mast.status.motion,
    ),
    MastBinarySensorDescription(
        key="lamp_fault",
        translation_key="lamp_fault",
        device_class=BinarySensorDeviceClass.PROBLEM,
        is_on_fn=lambda mast, sun_down: mast.lamp_fault(dt_util.utcnow(), sun_down),
        needs_sun=True,
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
    """Create each container's binary sensors in the container's subentry."""
    for asset_id, subentry in entry.subentries.items():
        if subentry.subentry_type == SUBENTRY_CONTAINER:
            async_add_entities(
                (
                    ContainerBinarySensor(entry, asset_id, description)
                    for description in CONTAINER_BINARY_SENSORS
                ),
                config_subentry_id=asset_id,
            )
        elif subentry.subentry_type == SUBENTRY_MAST:
            async_add_entities(
                (
                    MastBinarySensor(entry, asset_id, description)
                    for description in MAST_BINARY_SENSORS
                ),
                config_subentry_id=asset_id,
            )
        elif subentry.subentry_type == SUBENTRY_LOCKER_BANK:
            bank = entry.runtime_data.site.locker_banks[asset_id]
            async_add_entities(
                (
                    CompartmentBinarySensor(entry, asset_id, description, number)
                    for number in bank.compartments
                    for description in COMPARTMENT_BINARY_SENSORS
                ),
                config_subentry_id=asset_id,
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
        sun_down = self.runtime.lighting.sun_down() if description.needs_sun else False
        return description.is_on_fn(self.mast, sun_down)

    @property
    def is_on(self) -> bool | None:
        """Return the state from the model."""
        return self.value  # type: ignore[return-value]


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
