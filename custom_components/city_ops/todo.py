"""The site's collection route: due containers as to-do items in tour order."""

from __future__ import annotations

from homeassistant.components.todo.const import TodoItemStatus
from homeassistant.components.todo.entity import TodoItem, TodoListEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .entity import SiteEntity
from .runtime import CityOpsConfigEntry

PARALLEL_UPDATES = 0

COLLECTION_ROUTE = EntityDescription(key="collection_route", translation_key="collection_route")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CityOpsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the collection route of the site."""
    async_add_entities([CollectionRoute(entry, COLLECTION_ROUTE)])


class CollectionRoute(SiteEntity, TodoListEntity):
    """Due containers in visiting order; an item completes when its container is emptied."""

    _attr_supported_features = None

    @property
    def todo_items(self) -> list[TodoItem]:
        """Open stops in tour order, then the containers emptied in the last day."""
        runtime = self.runtime
        plan = runtime.collection_plan(dt_util.utcnow())
        items = [
            TodoItem(
                uid=stop["asset_id"],
                summary=stop["name"],
                status=TodoItemStatus.NEEDS_ACTION,
                description=self._describe(stop["fill_level"], stop["waste_kind"], number),
            )
            for number, stop in enumerate(plan["stops"], start=1)
        ]
        containers = runtime.site.containers
        open_ids = {stop["asset_id"] for stop in plan["stops"]}
        for asset_id, emptied_at in sorted(
            runtime.completed.items(), key=lambda item: item[1], reverse=True
        ):
            if asset_id in open_ids or asset_id not in containers:
                continue
            items.append(
                TodoItem(
                    uid=asset_id,
                    summary=containers[asset_id].spec.name,
                    status=TodoItemStatus.COMPLETED,
                    completed=emptied_at,
                )
            )
        return items

    @staticmethod
    def _describe(fill_level: float | None, waste_kind: str, number: int) -> str:
        level = "?" if fill_level is None else f"{fill_level:.0f} %"
        return f"#{number} · {waste_kind} · {level}"
