"""Who may do what, in Home Assistant's own terms: one check for every service and entity action.

- Home Assistant itself (automations, scripts: a call without a user) and admins: everything.
- Read-only users (group `system-read-only`, or any user whose entity permissions deny control
  of the entities concerned): nothing that changes anything.
- Booking accounts (non-admin users named in the site option `booking_users`, e.g. a booking
  portal): `reserve`, `cancel` and `extend` at that site, nothing else.
- Operators (every other non-admin user): booking, typing a code in (`release_code`), lights,
  boosts and locking a compartment; never what opens or frees a compartment without a code,
  nor the asset file.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING

from homeassistant.auth.models import User
from homeassistant.auth.permissions.const import POLICY_CONTROL
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import Unauthorized, UnknownUser
from homeassistant.helpers import entity_registry as er

from .const import CONF_BOOKING_USERS, DOMAIN

if TYPE_CHECKING:
    from .runtime import CityOpsConfigEntry


class Action(StrEnum):
    """What a call does, from the least to the most a user must be trusted with."""

    BOOK = "book"  # reserve, cancel, extend
    OPERATE = "operate"  # release_code, lights, boost, lock a compartment
    ADMINISTER = "administer"  # open without a code, free or take out a compartment, files


class NotPermitted(Unauthorized):
    """Home Assistant's Unauthorized (HTTP 401 over REST), with a translated reason."""

    def __init__(self, key: str, context: Context | None, entity_id: str | None = None) -> None:
        """Refuse with the translation key `key`."""
        super().__init__(context=context, entity_id=entity_id, permission=POLICY_CONTROL)
        self.translation_domain = DOMAIN
        self.translation_key = key
        self.translation_placeholders = {}
        self.generate_message = True
        self._message = None


def booking_users(entry: CityOpsConfigEntry) -> frozenset[str]:
    """The user ids a site lets book and do nothing else."""
    return frozenset(str(user_id) for user_id in entry.options.get(CONF_BOOKING_USERS) or ())


async def async_check(
    hass: HomeAssistant,
    context: Context | None,
    action: Action,
    *,
    entry: CityOpsConfigEntry | None,
    entity_ids: Iterable[str] = (),
) -> None:
    """Let the call through or raise NotPermitted (UnknownUser for a user that is gone)."""
    if context is None or context.user_id is None:
        return  # Home Assistant itself: something an admin set up
    user = await hass.auth.async_get_user(context.user_id)
    if user is None:
        raise UnknownUser(context=context)
    if user.is_admin:
        return
    entity_ids = list(entity_ids)
    if not _may_control(user, entity_ids):
        raise NotPermitted("permission_read_only", context, entity_ids[0] if entity_ids else None)
    if action is Action.ADMINISTER:
        raise NotPermitted("permission_admin_only", context)
    if action is not Action.BOOK and entry is not None and user.id in booking_users(entry):
        raise NotPermitted("permission_booking_only", context)


def _may_control(user: User, entity_ids: list[str]) -> bool:
    """Control of every entity concerned; without entities, control of all of them."""
    if entity_ids:
        return all(user.permissions.check_entity(eid, POLICY_CONTROL) for eid in entity_ids)
    return user.permissions.access_all_entities(POLICY_CONTROL)


def device_entities(hass: HomeAssistant, device_id: str) -> list[str]:
    """The entities of a device (a bank's locks, sensors and calendar)."""
    return [
        entity.entity_id
        for entity in er.async_entries_for_device(er.async_get(hass), device_id)
        if entity.platform == DOMAIN
    ]
