"""The lock of each locker compartment: shows what the bank reports; opening it is for admins."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from homeassistant.components.lock import LockEntity, LockEntityDescription
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import CompartmentEntity
from .lending import refusal
from .model.locker import LockerBank, LockerRefused, LockerUpdate
from .permissions import Action
from .runtime import CityOpsConfigEntry

PARALLEL_UPDATES = 0

COMPARTMENT = LockEntityDescription(key="compartment", translation_key="compartment")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CityOpsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Hand the site's budget what builds a compartment's lock."""
    await entry.runtime_data.budget.async_register(
        Platform.LOCK,
        async_add_entities,
        lambda planned: CompartmentLock(
            entry, planned.asset_id or "", COMPARTMENT, planned.number or 0
        ),
    )


class CompartmentLock(CompartmentEntity, LockEntity):
    """A compartment's lock: unlocking without a code is a maintenance opening (admins only)."""

    def shown_value(self) -> object:
        """Locked and door state as the bank reported them."""
        status = self.compartment.status
        return (status.locked, status.door_open)

    @property
    def is_locked(self) -> bool | None:
        """Return what the bank reported."""
        return self.value[0]  # type: ignore[index,no-any-return]

    @property
    def is_open(self) -> bool | None:
        """An open door shows as an open lock."""
        return self.value[1]  # type: ignore[index,no-any-return]

    async def async_unlock(self, **kwargs: Any) -> None:
        """Open for maintenance: only an admin (or an automation an admin wrote) may."""
        await self.async_permit(Action.ADMINISTER)
        number = self.compartment.spec.number
        await self._async_change(
            lambda bank, now: bank.open_for_maintenance(now, bank.compartment(number))
        )

    async def async_lock(self, **kwargs: Any) -> None:
        """Lock the compartment (operators may: nothing opens by it)."""
        await self.async_permit(Action.OPERATE)
        number = self.compartment.spec.number
        await self._async_change(lambda bank, now: bank.lock(now, bank.compartment(number)))

    async def _async_change(self, change: Callable[[LockerBank, datetime], LockerUpdate]) -> None:
        try:
            await self.runtime.lending.async_change(self.asset_id, change, self._context)
        except LockerRefused as err:  # the bank out of reach, a reload under way
            raise refusal(err) from None
