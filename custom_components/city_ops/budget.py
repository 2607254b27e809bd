"""The site's entity budget: which entities each asset has, and which come first.

Home Assistant adds at most `MAX_ENABLED_ENTITIES_PER_CONFIG_ENTRY` enabled entities per config
entry and silently drops the rest; a site is one entry. So every entity an asset may have is
declared here as a slot: whether it is enabled by default, the quantity its device must have
reported (or the asset declared) before it exists, and its tier. New enabled entities are
admitted in tier order while there is room; whatever does not fit is named in a repair issue.
Entities already in the entity registry, and disabled ones, cost nothing new: Home Assistant
adds those regardless of the limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_platform, entity_registry as er, issue_registry as ir
from homeassistant.helpers.entity import Entity

from .const import DOMAIN, LOGGER, SUBENTRY_CONTAINER, SUBENTRY_LOCKER_BANK, SUBENTRY_MAST
from .model.container import Container

if TYPE_CHECKING:
    from .runtime import CityOpsConfigEntry, CityOpsRuntime

ISSUE_ENTITY_LIMIT = "entity_limit"
SETUP_BATCH = 100  # entities a set-up adds between two yields to the event loop
MAX_NAMED = 20  # assets named per entity kind in the repair issue


class Tier(IntEnum):
    """Which entities are the last ever dropped when a site is over the limit."""

    # Without these the site is blind: the fill level, the light, the compartment's lock.
    ESSENTIAL = 0
    # What operators read every day: faults, motion, loans, doors, what a bank can lend.
    OPERATIONS = 1
    # Counters and anything else a site can do without.
    EXTRA = 2


@dataclass(frozen=True, slots=True)
class Slot:
    """One entity an asset (or the site) may have."""

    domain: Platform
    key: str
    tier: Tier
    enabled: bool = True
    # The entity exists once the device reported this quantity (or the asset declared it).
    quantity: str | None = None


SITE_SLOTS: tuple[Slot, ...] = (
    Slot(Platform.TODO, "collection_route", Tier.ESSENTIAL),
    Slot(Platform.SENSOR, "containers_due", Tier.ESSENTIAL),
    Slot(Platform.SENSOR, "container_alarms", Tier.ESSENTIAL),
    Slot(Platform.SENSOR, "lighting_energy", Tier.ESSENTIAL, quantity="masts"),
    Slot(Platform.SENSOR, "lighting_reference_energy", Tier.ESSENTIAL, quantity="masts"),
    Slot(Platform.SENSOR, "lighting_savings", Tier.ESSENTIAL, quantity="masts"),
)
# Each named path of the site's masts: the site's lighting figures for its masts alone. Its
# energy and reference give any day's or month's savings of the path from their statistics.
PATH_SLOTS: tuple[Slot, ...] = (
    Slot(Platform.SENSOR, "path_savings", Tier.EXTRA),
    Slot(Platform.SENSOR, "path_energy", Tier.EXTRA),
    Slot(Platform.SENSOR, "path_reference_energy", Tier.EXTRA),
)
# One enabled entity per container: the fill level, carrying its fill state and alarms. The
# per-container alarm sensors exist for automations that want one container's alarm as an
# entity; they are disabled by default so that a site holds thousands of containers. A
# disabled entity still costs a registry entry (and a device look-up) when it is created, so
# each comes only once its container has a value for it: an import of thousands of silent
# containers creates their fill levels and nothing else.
CONTAINER_SLOTS: tuple[Slot, ...] = (
    Slot(Platform.SENSOR, "fill_level", Tier.ESSENTIAL),
    Slot(Platform.SENSOR, "fill_state", Tier.OPERATIONS, False, "fill_state"),
    Slot(Platform.BINARY_SENSOR, "fire_alarm", Tier.OPERATIONS, False, "temperature"),
    Slot(Platform.BINARY_SENSOR, "tilt", Tier.OPERATIONS, False, "tilt"),
    Slot(Platform.SENSOR, "last_emptied", Tier.EXTRA, False, "last_emptied"),
    Slot(Platform.SENSOR, "predicted_full", Tier.EXTRA, False, "predicted_full"),
    Slot(Platform.SENSOR, "battery", Tier.EXTRA, False, "battery"),
    Slot(Platform.SENSOR, "temperature", Tier.EXTRA, False, "temperature"),
)
# Whether a container has what an entity of it shows (its device reported it, or its readings
# gave it), by the slot's quantity; the second argument is the site's full threshold.
CONTAINER_HAS: Mapping[str, Callable[[Container, float], bool]] = {
    "battery": lambda container, _: container.status.battery is not None,
    "temperature": lambda container, _: container.status.temperature is not None,
    "tilt": lambda container, _: container.status.tilted is not None,
    "fill_state": lambda container, _: container.status.fill_state is not None,
    "last_emptied": lambda container, _: container.status.last_emptied is not None,
    "predicted_full": lambda container, full_at: container.predicted_full(full_at) is not None,
}
MAST_SLOTS: tuple[Slot, ...] = (
    Slot(Platform.LIGHT, "light", Tier.ESSENTIAL),
    Slot(Platform.BINARY_SENSOR, "lamp_fault", Tier.OPERATIONS),
    Slot(Platform.BINARY_SENSOR, "motion", Tier.OPERATIONS, quantity="motion"),
    Slot(Platform.SENSOR, "energy", Tier.EXTRA),
    Slot(Platform.SENSOR, "power", Tier.EXTRA, enabled=False),
    Slot(Platform.SENSOR, "illuminance", Tier.EXTRA, False, "illuminance"),
)
BANK_SLOTS: tuple[Slot, ...] = (
    Slot(Platform.SENSOR, "items_available", Tier.OPERATIONS),
    Slot(Platform.CALENDAR, "reservations", Tier.OPERATIONS),
)
COMPARTMENT_SLOTS: tuple[Slot, ...] = (
    Slot(Platform.LOCK, "compartment", Tier.ESSENTIAL),
    Slot(Platform.SENSOR, "loan_state", Tier.OPERATIONS),
    Slot(Platform.BINARY_SENSOR, "door", Tier.OPERATIONS),
    Slot(Platform.BINARY_SENSOR, "item", Tier.EXTRA, enabled=False),
)
ASSET_SLOTS: Mapping[str, tuple[Slot, ...]] = {
    SUBENTRY_CONTAINER: CONTAINER_SLOTS,
    SUBENTRY_MAST: MAST_SLOTS,
    SUBENTRY_LOCKER_BANK: BANK_SLOTS,
}


def enabled_cost(slots: Iterable[Slot]) -> int:
    """Enabled entities the slots may bring, counting those that wait for a quantity."""
    return sum(1 for slot in slots if slot.enabled)


CONTAINER_COST = enabled_cost(CONTAINER_SLOTS)
MAST_COST = enabled_cost(MAST_SLOTS)
BANK_COST = enabled_cost(BANK_SLOTS)
COMPARTMENT_COST = enabled_cost(COMPARTMENT_SLOTS)
PATH_COST = enabled_cost(PATH_SLOTS)


def asset_cost(kind: str, compartments: int = 0) -> int:
    """Enabled entities one asset of a kind may bring."""
    if kind == SUBENTRY_LOCKER_BANK:
        return BANK_COST + compartments * COMPARTMENT_COST
    return enabled_cost(ASSET_SLOTS[kind])


def entity_limit() -> int:
    """Home Assistant's limit, read when needed (it is a module constant there)."""
    return entity_platform.MAX_ENABLED_ENTITIES_PER_CONFIG_ENTRY


@dataclass(frozen=True, slots=True)
class Planned:
    """One entity of one asset (or of the site), before or after it was created."""

    slot: Slot
    asset_id: str | None = None  # None: the site's own entity
    number: int | None = None  # a compartment's number
    path: str | None = None  # a path's entity (of the site)

    @property
    def subentry_id(self) -> str | None:
        """The asset's subentry, which the entity is created in."""
        return self.asset_id

    def unique_id(self, entry_id: str) -> str:
        """The unique id the entity classes give this entity."""
        if self.path is not None:
            return f"{entry_id}_{self.slot.key}_{self.path}"
        if self.asset_id is None:
            return f"{entry_id}_{self.slot.key}"
        if self.number is not None:
            return f"{self.asset_id}_{self.number}_{self.slot.key}"
        return f"{self.asset_id}_{self.slot.key}"


type Builder = Callable[[Planned], Entity]
type AddEntities = Callable[..., None]


class EntityBudget:
    """Decides which of a site's entities exist and adds them through the platforms."""

    def __init__(self, hass: HomeAssistant, entry: CityOpsConfigEntry) -> None:
        """Start with nothing created; platforms register as they are set up."""
        self.hass = hass
        self.entry = entry
        self._registry = er.async_get(hass)
        self._platforms: dict[Platform, tuple[AddEntities, Builder]] = {}
        self._admitted: dict[Platform, list[Planned]] = {}
        self.created: set[str] = set()
        # Refused for the limit, by unique id; shown in the repair issue.
        self.missing: dict[str, Planned] = {}
        self.waiting: dict[str, list[Planned]] = {}  # asset id -> entities awaiting a quantity
        self._paths: set[str] = set()  # the paths whose entities the site has

    @property
    def runtime(self) -> CityOpsRuntime:
        """The site this budget is for."""
        return self.entry.runtime_data

    # -- what each asset may have -----------------------------------------------------------

    def planned(self, asset_id: str | None) -> list[Planned]:
        """Every entity an asset (None: the site) may have, in slot order."""
        runtime = self.runtime
        if asset_id is None:
            return [Planned(slot) for slot in SITE_SLOTS] + [
                planned for path in runtime.site.lighting.paths() for planned in path_plans(path)
            ]
        bank = runtime.site.locker_banks.get(asset_id)
        if bank is not None:
            return [Planned(slot, asset_id) for slot in BANK_SLOTS] + [
                Planned(slot, asset_id, number)
                for number in bank.compartments
                for slot in COMPARTMENT_SLOTS
            ]
        kind = SUBENTRY_MAST if asset_id in runtime.site.masts else SUBENTRY_CONTAINER
        return [Planned(slot, asset_id) for slot in ASSET_SLOTS[kind]]

    def has(self, asset_id: str | None, quantity: str) -> bool:
        """Whether the device reported a quantity, or the asset declared it."""
        runtime = self.runtime
        if asset_id is None:
            return bool(runtime.site.masts)
        container = runtime.site.containers.get(asset_id)
        if container is not None:
            return CONTAINER_HAS[quantity](container, runtime.site.settings.full_threshold)
        mast = runtime.site.masts[asset_id]
        params = runtime.assets[asset_id].params
        if quantity == "motion":
            return mast.status.motion is not None or bool(params.get("motion_source"))
        return mast.status.illuminance_lx is not None or bool(params.get("lux_source"))

    def _registered(self, planned: Planned) -> bool:
        return (
            self._registry.async_get_entity_id(
                planned.slot.domain, DOMAIN, planned.unique_id(self.entry.entry_id)
            )
            is not None
        )

    def _disabled(self, planned: Planned) -> bool:
        """Registered and disabled: Home Assistant would only look it up and leave it out.

        Enabling it reloads the site (Home Assistant does that), which then adds it.
        """
        entity_id = self._registry.async_get_entity_id(
            planned.slot.domain, DOMAIN, planned.unique_id(self.entry.entry_id)
        )
        entity = self._registry.async_get(entity_id) if entity_id else None
        return entity is not None and entity.disabled

    def _exists_now(self, planned: Planned) -> bool:
        quantity = planned.slot.quantity
        return quantity is None or self.has(planned.asset_id, quantity) or self._registered(planned)

    # -- room -------------------------------------------------------------------------------

    def enabled_count(self) -> int:
        """Enabled entities of the site in the entity registry."""
        return self._registry.entities.get_enabled_count_for_config_entry_id(self.entry.entry_id)

    def room(self) -> int:
        """Enabled entities the site can still add, keeping room for what waits for a quantity.

        An entity that waits for its device to report (a mast's motion) is counted as if it
        existed: a flow must not fill the room it needs once the device speaks.
        """
        waiting = sum(
            1
            for plans in self.waiting.values()
            for planned in plans
            if planned.slot.enabled and not self._registered(planned)
        )
        return entity_limit() - self.enabled_count() - waiting

    # -- set-up -----------------------------------------------------------------------------

    def plan(self) -> None:
        """Decide, before the platforms are set up, which entities the site gets."""
        entry_id = self.entry.entry_id
        free: list[Planned] = []
        paid: list[Planned] = []
        for asset_id in [None, *self.runtime.assets]:
            for planned in self.planned(asset_id):
                if self._disabled(planned):
                    # A large site has thousands: building each only for Home Assistant to
                    # drop it again made up much of a restart.
                    continue
                if not self._exists_now(planned):
                    self._wait(planned)
                elif not planned.slot.enabled or self._registered(planned):
                    free.append(planned)
                else:
                    paid.append(planned)
        self._paths = set(self.runtime.site.lighting.paths())
        self._forget_old_paths(
            {p.unique_id(entry_id) for path in self._paths for p in path_plans(path)}
        )
        room = entity_limit() - self.enabled_count()
        paid.sort(key=lambda planned: planned.slot.tier)  # stable: asset order within a tier
        admitted = free + paid[: max(0, room)]
        self.missing = {planned.unique_id(entry_id): planned for planned in paid[max(0, room) :]}
        for planned in admitted:
            self._admitted.setdefault(planned.slot.domain, []).append(planned)
        self._update_issue()

    def _forget_old_paths(self, kept: set[str]) -> None:
        """At set-up: remove the entities of paths no mast is on any more.

        `kept` are the unique ids of the paths' entities that stay.
        """
        entry_id = self.entry.entry_id
        prefixes = tuple(f"{entry_id}_{slot.key}_" for slot in PATH_SLOTS)
        for entity in er.async_entries_for_config_entry(self._registry, entry_id):
            if entity.unique_id.startswith(prefixes) and entity.unique_id not in kept:
                self._registry.async_remove(entity.entity_id)

    def _follow_paths(self) -> None:
        """A mast came, moved or went: a path's entities come and go with the path.

        Home Assistant removes a live entity whose registry entry is removed. O(masts) per
        call, and nothing more unless the site's paths changed.
        """
        paths = set(self.runtime.site.lighting.paths())
        if paths == self._paths:
            return
        entry_id = self.entry.entry_id
        dropped = False
        for path in self._paths - paths:
            for planned in path_plans(path):
                uid = planned.unique_id(entry_id)
                entity_id = self._registry.async_get_entity_id(planned.slot.domain, DOMAIN, uid)
                if entity_id is not None:
                    self._registry.async_remove(entity_id)
                self.created.discard(uid)
                dropped = self.missing.pop(uid, None) is not None or dropped
        gained = [p for path in sorted(paths - self._paths) for p in path_plans(path)]
        self._paths = paths
        self._admit([p for p in gained if p.unique_id(entry_id) not in self.created])
        if dropped:
            self._update_issue()

    async def async_register(
        self, domain: Platform, add_entities: AddEntities, build: Builder
    ) -> None:
        """A platform is ready: add its admitted entities, and later ones through it.

        Home Assistant adds entities eagerly, so a large site's thousands would all be added
        (each a message to every client following states) before the event loop runs again,
        and a client 4,096 messages behind is dropped: they go in slices, with a yield between.
        """
        self._platforms[domain] = (add_entities, build)
        plans = self._admitted.pop(domain, [])
        for start in range(0, len(plans), SETUP_BATCH):
            if start:
                await asyncio.sleep(0)
            self._add(domain, plans[start : start + SETUP_BATCH])

    def _add(self, domain: Platform, plans: list[Planned]) -> None:
        if not plans:
            return
        add_entities, build = self._platforms[domain]
        entry_id = self.entry.entry_id
        by_subentry: dict[str | None, list[Entity]] = {}
        for planned in plans:
            entity = build(planned)
            entity._attr_entity_registry_enabled_default = planned.slot.enabled
            by_subentry.setdefault(planned.subentry_id, []).append(entity)
            self.created.add(planned.unique_id(entry_id))
        for subentry_id, entities in by_subentry.items():
            add_entities(entities, config_subentry_id=subentry_id)

    # -- while running ----------------------------------------------------------------------

    def _wait(self, planned: Planned) -> None:
        """Look out for the asset's device reporting what the entity shows."""
        if planned.asset_id is None:
            return  # the site's lighting sensors come with its first mast (site_changed)
        self.waiting.setdefault(planned.asset_id, []).append(planned)

    @callback
    def quantity_seen(self, asset_id: str, changed: Collection[str] | None) -> None:
        """The asset changed (`changed` names what, None: anything): add what waited for it.

        The runtime calls this only for assets in `waiting`, so most readings cost a lookup.
        """
        waiting = self.waiting.get(asset_id)
        if not waiting:
            return
        if changed is not None:
            # Most readings name none of what the entities wait for: a few set lookups.
            for planned in waiting:
                if planned.slot.quantity in changed:
                    break
            else:
                return
        ready = [
            planned
            for planned in waiting
            if (changed is None or planned.slot.quantity in changed)
            and self.has(asset_id, planned.slot.quantity or "")
        ]
        if not ready:
            return
        rest = [planned for planned in waiting if planned not in ready]
        if rest:
            self.waiting[asset_id] = rest
        else:
            del self.waiting[asset_id]
        self._admit(ready)

    def _admit(self, plans: list[Planned]) -> None:
        """Add entities now (an asset added, a quantity seen), as far as the limit allows."""
        entry_id = self.entry.entry_id
        room = entity_limit() - self.enabled_count()
        by_domain: dict[Platform, list[Planned]] = {}
        refused = False
        for planned in sorted(plans, key=lambda planned: planned.slot.tier):
            if planned.slot.enabled and not self._registered(planned):
                if room <= 0:
                    self.missing[planned.unique_id(entry_id)] = planned
                    refused = True
                    continue
                room -= 1
            if planned.slot.domain not in self._platforms:
                # The platform is not set up yet: it adds this with the rest.
                self._admitted.setdefault(planned.slot.domain, []).append(planned)
                continue
            by_domain.setdefault(planned.slot.domain, []).append(planned)
        for domain, domain_plans in by_domain.items():
            self._add(domain, domain_plans)
        if refused:
            self._update_issue()

    @callback
    def asset_added(self, asset_id: str) -> None:
        """A new asset: its entities now, and later those that wait for a quantity."""
        if asset_id in self.runtime.site.masts:
            self._follow_paths()
        ready: list[Planned] = []
        for planned in self.planned(asset_id):
            if self._exists_now(planned):
                ready.append(planned)
            else:
                self._wait(planned)
        self._admit(ready)

    @callback
    def asset_changed(self, asset_id: str) -> None:
        """A changed asset: the entities it gained (a sensor named, a compartment added)."""
        if asset_id in self.runtime.site.masts:
            self._follow_paths()  # moved onto another path
        entry_id = self.entry.entry_id
        planned = self.planned(asset_id)
        wanted = {p.unique_id(entry_id) for p in planned}
        prefix = f"{asset_id}_"
        self.created = {uid for uid in self.created if not uid.startswith(prefix) or uid in wanted}
        ready = [
            p
            for p in planned
            if p.unique_id(entry_id) not in self.created
            and self._exists_now(p)
            and not self._disabled(p)
        ]
        if asset_id in self.waiting:
            rest = [p for p in self.waiting[asset_id] if p not in ready]
            if rest:
                self.waiting[asset_id] = rest
            else:
                del self.waiting[asset_id]
        self._admit(ready)

    @callback
    def site_changed(self) -> None:
        """The site's first mast came in place: the site's lighting sensors with it."""
        entry_id = self.entry.entry_id
        self._admit(
            [
                p
                for p in self.planned(None)
                if p.unique_id(entry_id) not in self.created and self._exists_now(p)
            ]
        )

    @callback
    def asset_removed(self, asset_id: str) -> None:
        """A removed asset: Home Assistant removed its entities with its subentry."""
        self.waiting.pop(asset_id, None)
        prefix = f"{asset_id}_"
        was_mast = any(f"{asset_id}_{slot.key}" in self.created for slot in MAST_SLOTS)
        self.created = {uid for uid in self.created if not uid.startswith(prefix)}
        if was_mast:
            self._follow_paths()  # it may have been its path's last mast
        before = len(self.missing)
        self.missing = {
            uid: planned for uid, planned in self.missing.items() if planned.asset_id != asset_id
        }
        if len(self.missing) != before:
            self._update_issue()

    # -- the repair issue -------------------------------------------------------------------

    def _update_issue(self) -> None:
        issue_id = f"{ISSUE_ENTITY_LIMIT}_{self.entry.entry_id}"
        if not self.missing:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        LOGGER.warning(
            "%s: Home Assistant's limit of %s enabled entities per site is reached; "
            "%s entities were not created (see the repair issue)",
            self.entry.title,
            entity_limit(),
            len(self.missing),
        )
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_ENTITY_LIMIT,
            translation_placeholders={
                "site": self.entry.title,
                "limit": str(entity_limit()),
                "count": str(len(self.missing)),
                "missing": self.missing_summary(),
            },
        )

    def missing_summary(self) -> str:
        """Per entity kind, how many are missing and on which assets (the first few)."""
        names: dict[str, list[str]] = {}
        assets = self.runtime.assets
        for planned in self.missing.values():
            name = assets[planned.asset_id].name if planned.asset_id else self.entry.title
            if planned.path is not None:
                name = f"{name} · {planned.path}"
            if planned.number is not None:
                name = f"{name} #{planned.number}"
            names.setdefault(planned.slot.key, []).append(name)
        lines = []
        for key, listed in names.items():
            shown = ", ".join(listed[:MAX_NAMED])
            more = f", … (+{len(listed) - MAX_NAMED})" if len(listed) > MAX_NAMED else ""
            lines.append(f"- {key}: {len(listed)} ({shown}{more})")
        return "\n".join(lines)


def path_plans(path: str) -> list[Planned]:
    """The site's entities of one path."""
    return [Planned(slot, path=path) for slot in PATH_SLOTS]


LIGHTING_SITE_COST = sum(1 for slot in SITE_SLOTS if slot.quantity == "masts")


def added_cost(
    runtime: CityOpsRuntime,
    kind: str,
    compartments: int,
    old_compartments: int | None,
    path: str = "",
) -> int:
    """Enabled entities an asset adds; `old_compartments` is set when a bank is changed.

    `path` is a mast's path: the first mast of a path brings the path's entities.
    """
    return changes_cost(runtime, [(kind, compartments, old_compartments)], [path])


def new_paths_cost(runtime: CityOpsRuntime, paths: Iterable[str]) -> int:
    """Enabled entities the paths bring that the site's masts are not on yet."""
    new = set(paths) - set(runtime.site.lighting.paths()) - {""}
    return PATH_COST * len(new)


def changes_cost(
    runtime: CityOpsRuntime,
    changes: Iterable[tuple[str, int, int | None]],
    paths: Iterable[str] = (),
) -> int:
    """Enabled entities a set of changes adds: (kind, compartments, old compartments) each.

    `paths` are the paths of the masts added or changed.
    """
    cost = new_paths_cost(runtime, paths)
    new_masts = False
    for kind, compartments, old in changes:
        if old is not None:
            cost += max(0, compartments - old) * COMPARTMENT_COST
            continue
        cost += asset_cost(kind, compartments)
        new_masts = new_masts or kind == SUBENTRY_MAST
    if new_masts and not runtime.site.masts:
        cost += LIGHTING_SITE_COST  # the site's energy and savings come with its first mast
    return cost


def fits(budget: EntityBudget, kind: str, room: int | None = None, new_path: bool = False) -> int:
    """How many more assets of a kind (compartments for banks) the site has room for.

    Masts on the site's paths, or on one `new_path` (which brings its path's entities).
    """
    room = budget.room() if room is None else room
    if new_path:
        room -= PATH_COST
    if kind == SUBENTRY_LOCKER_BANK:
        # A bank's own entities first, then its compartments.
        return max(0, (room - BANK_COST) // COMPARTMENT_COST)
    if kind == SUBENTRY_MAST and not budget.runtime.site.masts:
        room -= LIGHTING_SITE_COST
    return max(0, room // asset_cost(kind))


def placeholders(budget: EntityBudget, room: int | None = None) -> dict[str, str]:
    """What a refusal tells: how many more of each kind fit."""
    return {
        "limit": str(entity_limit()),
        "room": str(max(0, budget.room() if room is None else room)),
        "containers": str(fits(budget, SUBENTRY_CONTAINER, room)),
        "masts": str(fits(budget, SUBENTRY_MAST, room)),
        "compartments": str(fits(budget, SUBENTRY_LOCKER_BANK, room)),
    }
