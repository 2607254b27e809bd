"""The site's collection route: due containers as to-do items in tour order, worked by a crew.

Ticking a stop records that the crew emptied the container (who and when); saving a stop
with a note skips it for this tour with that note as the reason. Done stops of the current
tour stay listed as completed; the next tour starts clean.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from homeassistant.components.todo.const import TodoItemStatus, TodoListEntityFeature
from homeassistant.components.todo.entity import TodoItem, TodoListEntity
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .entity import SiteEntity
from .model.route import Outcome, StopDone
from .permissions import Action, async_check
from .runtime import CityOpsConfigEntry
from .waste import tour_start

PARALLEL_UPDATES = 0

COLLECTION_ROUTE = EntityDescription(key="collection_route", translation_key="collection_route")

# To-do items are not translated by Home Assistant; the site's language picks the texts.
ROUTE_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "stop": "Stop {number} · {waste} · {level}",
        "unknown_level": "level unknown",
        "offline": "sensor not reporting",
        "fire_alarm": "FIRE ALARM",
        "tilt": "TILTED",
        "emptied": "Emptied {time}",
        "emptied_by": "Emptied by {by} {time}",
        "detected": "Emptying seen by the sensor {time}",
        "skipped": "Skipped {time}: {reason}",
        "skipped_by": "Skipped by {by} {time}: {reason}",
        "residual": "residual waste",
        "paper": "paper",
        "glass": "glass",
        "organic": "organic waste",
        "packaging": "packaging",
        "other": "waste",
    },
    "de": {
        "stop": "Halt {number} · {waste} · {level}",
        "unknown_level": "Füllstand unbekannt",
        "offline": "Sensor meldet nicht",
        "fire_alarm": "BRANDALARM",
        "tilt": "UMGEKIPPT",
        "emptied": "Geleert {time}",
        "emptied_by": "Geleert von {by} {time}",
        "detected": "Leerung vom Sensor erkannt {time}",
        "skipped": "Übersprungen {time}: {reason}",
        "skipped_by": "Übersprungen von {by} {time}: {reason}",
        "residual": "Restmüll",
        "paper": "Papier",
        "glass": "Glas",
        "organic": "Bioabfall",
        "packaging": "Verpackung",
        "other": "Abfall",
    },
}


def route_texts(language: str) -> dict[str, str]:
    """The route's texts in a language, English when there are none."""
    return ROUTE_TEXTS.get(language.split("-", maxsplit=1)[0], ROUTE_TEXTS["en"])


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CityOpsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Hand the site's budget what builds the collection route."""
    await entry.runtime_data.budget.async_register(
        Platform.TODO, async_add_entities, lambda _: CollectionRoute(entry, COLLECTION_ROUTE)
    )


class CollectionRoute(SiteEntity, TodoListEntity):
    """Due containers in visiting order; a crew ticks or skips them."""

    _attr_supported_features = (
        TodoListEntityFeature.UPDATE_TODO_ITEM | TodoListEntityFeature.SET_DESCRIPTION_ON_ITEM
    )

    @property
    def _texts(self) -> dict[str, str]:
        return route_texts(self.hass.config.language)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The tour's length, for the dashboard's line above the route."""
        return {"length_m": self.runtime.waste.shown_route()[1]}

    _built: tuple[int, str, list[TodoItem]] | None = None

    @property
    def todo_items(self) -> list[TodoItem]:
        """Open stops in tour order, then what the crew and the sensors did on this tour.

        The order is the latest plan's (planned in a worker thread, never here); containers
        due since then follow until the next plan places them. Every state write reads the
        list (twice), so it is built again only when the site's waste changed.
        """
        key = (self.runtime.waste.version, self.hass.config.language)
        if self._built is None or self._built[:2] != key:
            self._built = (*key, self._build_items())
        return self._built[2]

    def _build_items(self) -> list[TodoItem]:
        runtime = self.runtime
        texts = self._texts
        route, _ = runtime.waste.shown_route()
        items = [
            TodoItem(
                uid=asset_id,
                summary=self._summary(asset_id, texts),
                status=TodoItemStatus.NEEDS_ACTION,
                description=self._describe(asset_id, number, texts),
            )
            for number, asset_id in enumerate(route, start=1)
        ]
        containers = runtime.site.containers
        start = tour_start()
        listed = set(route)
        done: list[tuple[datetime, str, str]] = []
        for asset_id, stop in runtime.waste.route.handled(start).items():
            done.append((stop.at, asset_id, self._done_text(stop)))
        for asset_id, at in runtime.waste.completed.items():
            handled = runtime.waste.route.done.get(asset_id)
            if at >= start and (handled is None or handled.at < start):
                done.append((at, asset_id, texts["detected"].format(time=self._time(at))))
        for at, asset_id, text in sorted(done, reverse=True):
            if asset_id in listed or asset_id not in containers:
                continue
            listed.add(asset_id)
            items.append(
                TodoItem(
                    uid=asset_id,
                    summary=containers[asset_id].spec.name,
                    status=TodoItemStatus.COMPLETED,
                    completed=at,
                    description=text,
                )
            )
        return items

    async def async_update_todo_item(self, item: TodoItem) -> None:
        """Tick a stop (emptied by the crew) or save it with a note (skipped, the note why)."""
        runtime = self.runtime
        # A crew member operates; a booking account or a read-only user changes nothing.
        await async_check(
            self.hass,
            self._context,
            Action.OPERATE,
            entry=runtime.entry,
            entity_ids=[self.entity_id],
        )
        uid = item.uid or ""
        route, _ = runtime.waste.shown_route()
        stops = {asset_id: number for number, asset_id in enumerate(route, 1)}
        if uid not in stops:
            # Home Assistant passes only listed items: this one is done on this tour.
            if item.status == TodoItemStatus.COMPLETED:
                return  # ticked twice: nothing more happened
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="stop_already_done"
            )
        by = await self._user_name()
        if item.status == TodoItemStatus.COMPLETED:
            runtime.waste.empty_by_hand(uid, by)
            return
        reason = self._reason(item.description, self._describe(uid, stops[uid], self._texts))
        if not reason:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="skip_needs_reason"
            )
        runtime.waste.skip_stop(uid, by, reason)

    async def _user_name(self) -> str:
        """The name of the crew member behind the call, if Home Assistant knows one."""
        user_id = self._context.user_id if self._context else None
        user = await self.hass.auth.async_get_user(user_id) if user_id else None
        return (user.name or "") if user else ""

    @staticmethod
    def _reason(description: str | None, shown: str) -> str:
        """What the crew wrote, without the stop line the item already showed."""
        return (description or "").replace(shown, "").strip(" \n·-:")

    def _summary(self, asset_id: str, texts: dict[str, str]) -> str:
        """The container's name, with its alarms spelled out."""
        container = self.runtime.site.containers[asset_id]
        status, name = container.status, container.spec.name
        if not (status.fire_alarm or status.tilted):
            return name
        alarms = [
            texts[key]
            for key, raised in (("fire_alarm", status.fire_alarm), ("tilt", status.tilted))
            if raised
        ]
        return " · ".join([name, *alarms])

    def _describe(self, asset_id: str, number: int, texts: dict[str, str]) -> str:
        container = self.runtime.site.containers[asset_id]
        level = container.status.fill_level
        shown = texts["unknown_level"] if level is None else f"{level:.0f} %"
        waste = texts.get(container.spec.waste_kind.value, texts["other"])
        line = texts["stop"].format(number=number, waste=waste, level=shown)
        return line if container.status.online else f"{line} · {texts['offline']}"

    def _done_text(self, stop: StopDone) -> str:
        texts = self._texts
        key = "emptied" if stop.outcome is Outcome.EMPTIED else "skipped"
        if stop.by:
            key += "_by"
        return texts[key].format(by=stop.by, time=self._time(stop.at), reason=stop.reason)

    @staticmethod
    def _time(at: datetime) -> str:
        return dt_util.as_local(at).strftime("%H:%M")
