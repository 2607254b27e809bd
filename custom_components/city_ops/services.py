"""Site services: the asset file, the collection tour, boosts and the lending workflow."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
import json
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.target import TargetSelection, async_extract_referenced_entity_ids
from homeassistant.util.file import write_utf8_file_atomic
import orjson
import probatio as vol

from .budget import changes_cost, placeholders
from .const import DOMAIN, SUBENTRY_CONTAINER, SUBENTRY_LOCKER_BANK, SUBENTRY_MAST
from .lending import refusal
from .model.assets import (
    Asset,
    AssetFileError,
    export_asset_file,
    parse_asset_file,
)
from .model.locker import Compartment, LockerBank, LockerRefused, LockerUpdate
from .permissions import Action, async_check, device_entities
from .runtime import CityOpsConfigEntry, CityOpsRuntime
from .sources.reading import MAX_COMPARTMENTS
from .waste import async_plan_collection

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_PATH = "path"
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_JSON_DEPTH = 32  # an asset file needs 6 levels; unknown properties get some room
ASSET_FILE_SUFFIXES = (".geojson", ".json")
MAX_PLANNED_SITES = 50
IMPORT_BATCH = 100  # subentries added between two yields to the event loop
ASSET_KINDS = frozenset({SUBENTRY_CONTAINER, SUBENTRY_MAST, SUBENTRY_LOCKER_BANK})

SITE_SCHEMA = vol.Schema({vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string})
# A crew may serve several sites: one id or a list of them, the first one's depot is home.
SITES_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): vol.All(
            cv.ensure_list, [cv.string], vol.Length(min=1, max=MAX_PLANNED_SITES)
        )
    }
)
FILE_SCHEMA = SITE_SCHEMA.extend({vol.Required(ATTR_PATH): cv.string})


def _site(hass: HomeAssistant, call: ServiceCall) -> CityOpsConfigEntry:
    return _loaded_site(hass, call.data[ATTR_CONFIG_ENTRY_ID])


def _loaded_site(hass: HomeAssistant, entry_id: str) -> CityOpsConfigEntry:
    entry: CityOpsConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_site",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="site_not_loaded",
            translation_placeholders={"site": entry.title},
        )
    return entry


def _config_path(hass: HomeAssistant, relative: str) -> Path:
    """Resolve a path inside the config directory; anything outside it is refused."""
    root = Path(hass.config.config_dir).resolve()
    shown = relative.replace("\x00", "\\0")[:200]
    try:
        if "\x00" in relative or not relative.strip() or len(relative) > 1024:
            raise ValueError(relative)
        candidate = (root / relative).resolve()
    except OSError, ValueError, RuntimeError:  # NUL bytes, symlink loops, names too long
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="path_invalid",
            translation_placeholders={"path": shown},
        ) from None
    if (
        not candidate.is_relative_to(root)
        or candidate == root
        # Home Assistant's own state (our bookings and lock-outs among it) is no asset file.
        or candidate.is_relative_to(root / ".storage")
    ):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="path_outside_config",
            translation_placeholders={"path": shown},
        )
    return candidate


def _read_json(path: Path) -> Any:
    """The JSON document in a file; too large, too deep or not JSON is a ValueError."""
    if path.exists() and not path.is_file():
        raise ValueError("not a file")
    with path.open("rb") as handle:
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
    document = orjson.loads(raw)  # its own depth limit turns hostile nesting into an error
    _check_depth(document)
    return document


def _check_depth(document: Any) -> None:
    """Refuse documents nested deeper than MAX_JSON_DEPTH (walked without recursion)."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict):
            pending += [(item, depth + 1) for item in value.values()]
        elif isinstance(value, list):
            pending += [(item, depth + 1) for item in value]


def _is_asset_file(path: Path) -> bool:
    """Whether an existing file is an asset file (the only kind export may replace)."""
    try:
        document = _read_json(path)
    except OSError, ValueError:
        return False
    features = document.get("features") if isinstance(document, dict) else None
    return (
        document.get("type") == "FeatureCollection"
        and isinstance(features, list)
        and all(
            isinstance(feature, dict)
            and isinstance(feature.get("properties"), dict)
            and feature["properties"].get("kind") in ASSET_KINDS
            for feature in features
        )
    )


def _write_asset_file(path: Path, text: str) -> None:
    """Write the export; an existing file that is no asset file is never replaced."""
    if path.suffix.lower() not in ASSET_FILE_SUFFIXES:
        raise ExportRefused("export_suffix")
    if path.exists() and not _is_asset_file(path):
        raise ExportRefused("export_would_overwrite")
    write_utf8_file_atomic(str(path), text)


class ExportRefused(Exception):
    """An export target that is not ours to write; the argument is a translation key."""


async def _import_assets(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    entry = _site(hass, call)
    await async_check(hass, call.context, Action.ADMINISTER, entry=entry)
    path = _config_path(hass, call.data[ATTR_PATH])
    try:
        document = await hass.async_add_executor_job(_read_json, path)
    except FileNotFoundError:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="file_not_found",
            translation_placeholders={"path": call.data[ATTR_PATH]},
        ) from None
    except (OSError, ValueError) as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="file_unreadable",
            translation_placeholders={"path": call.data[ATTR_PATH], "error": str(err)[:200]},
        ) from None
    runtime = entry.runtime_data
    try:
        assets = parse_asset_file(document, runtime.assets.values())
    except AssetFileError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_asset_file",
            translation_placeholders={
                "count": str(len(err.problems)),
                "problems": "\n".join(err.problems[:50]),
            },
        ) from None

    problems = _booked_compartments_dropped(entry, assets)
    if problems:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_asset_file",
            translation_placeholders={"count": str(len(problems)), "problems": "\n".join(problems)},
        )
    existing_by_name = {
        (sub.subentry_type, sub.data["name"].casefold()): sub
        for sub in entry.subentries.values()
        if sub.subentry_type in (SUBENTRY_CONTAINER, SUBENTRY_MAST, SUBENTRY_LOCKER_BANK)
    }
    _check_room(runtime, assets, existing_by_name)
    added: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    # The file is followed once, after the last subentry, rather than once per asset.
    runtime.bulk_update = True
    entries = hass.config_entries
    for index, asset in enumerate(assets):
        if index and not index % IMPORT_BATCH:
            # Each added subentry is a message to every client following config entries;
            # a client that falls 4,096 messages behind is dropped.
            await asyncio.sleep(0)
        data = asset.as_subentry_data()
        unique_id = f"{asset.source_kind}:{asset.device}"
        current = existing_by_name.get((asset.kind, asset.name.casefold()))
        if current is None:
            entries.async_add_subentry(
                entry,
                ConfigSubentry(
                    data=MappingProxyType(data),
                    subentry_type=asset.kind,
                    title=asset.name,
                    unique_id=unique_id,
                ),
            )
            added.append(asset.name)
        elif entries.async_update_subentry(
            entry, current, data=data, title=asset.name, unique_id=unique_id
        ):
            updated.append(asset.name)
        else:
            unchanged.append(asset.name)
    if (added or updated) and not await runtime.async_apply_changes():
        entries.async_schedule_reload(entry.entry_id)  # ZHA assets: the site is rebuilt
    else:
        runtime.bulk_update = False
    return cast(ServiceResponse, {"added": added, "updated": updated, "unchanged": unchanged})


def _check_room(
    runtime: CityOpsRuntime, assets: list[Asset], existing: Mapping[tuple[str, str], ConfigSubentry]
) -> None:
    """Refuse a file whose assets would pass Home Assistant's entity limit for the site."""
    changes: list[tuple[str, int, int | None]] = []
    for asset in assets:
        compartments = len(asset.params.get("compartments") or ())
        current = existing.get((asset.kind, asset.name.casefold()))
        if current is None:
            changes.append((asset.kind, compartments, None))
        elif asset.kind == SUBENTRY_LOCKER_BANK:
            changes.append((asset.kind, compartments, len(current.data.get("compartments") or ())))
    paths = [str(a.params.get("path") or "") for a in assets if a.kind == SUBENTRY_MAST]
    needed = changes_cost(runtime, changes, paths)
    room = runtime.budget.room()
    if needed > room:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entity_limit_import",
            translation_placeholders={"needed": str(needed), **placeholders(runtime.budget, room)},
        )


def _booked_compartments_dropped(entry: CityOpsConfigEntry, assets: list[Asset]) -> list[str]:
    """Compartments a file would remove while they lend something (their loans would go)."""
    runtime = entry.runtime_data
    banks = {
        runtime.assets[asset_id].name.casefold(): bank
        for asset_id, bank in runtime.site.locker_banks.items()
    }
    problems = []
    for asset in assets:
        bank = banks.get(asset.name.casefold())
        if asset.kind != SUBENTRY_LOCKER_BANK or bank is None:
            continue
        kept = {c["number"] for c in asset.params.get("compartments") or ()}
        problems += [
            f"{asset.name!r}: compartment {loan.compartment} is reserved or lent out"
            for loan in bank.active_loans()
            if loan.compartment not in kept
        ]
    return problems


async def _export_assets(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    entry = _site(hass, call)
    await async_check(hass, call.context, Action.ADMINISTER, entry=entry)
    path = _config_path(hass, call.data[ATTR_PATH])
    document = export_asset_file(entry.runtime_data.assets.values())
    text = json.dumps(document, indent=2, ensure_ascii=False)
    try:
        await hass.async_add_executor_job(_write_asset_file, path, text)
    except ExportRefused as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=str(err),
            translation_placeholders={"path": call.data[ATTR_PATH]},
        ) from None
    except (OSError, HomeAssistantError) as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="file_unwritable",
            translation_placeholders={"path": call.data[ATTR_PATH], "error": str(err)[:200]},
        ) from err
    return {"path": str(path), "count": len(document["features"])}


ATTR_RADIUS = "radius"
ATTR_HOLD = "hold"
ATTR_WHEN_DARK = "when_dark"
ATTR_FOLLOW_MOTION = "follow_motion"
ATTR_LONGEST_MOTION = "longest_motion"
BOOST_SCHEMA = vol.Schema(
    {
        **cv.ENTITY_SERVICE_FIELDS,
        vol.Optional(ATTR_RADIUS): vol.All(vol.Coerce(int), vol.Range(min=0, max=20)),
        vol.Optional(ATTR_HOLD): vol.All(vol.Coerce(float), vol.Range(min=1, max=86_400)),
        vol.Optional(ATTR_WHEN_DARK, default=False): cv.boolean,
        vol.Optional(ATTR_FOLLOW_MOTION, default=False): cv.boolean,
        vol.Optional(ATTR_LONGEST_MOTION, default=15): vol.All(
            vol.Coerce(float), vol.Range(min=1, max=240)
        ),
    }
)


def _targets_a_mast(entity: er.RegistryEntry) -> bool:
    """Whether an entity stands for its mast in a boost: the mast's light or motion sensor."""
    return entity.domain == "light" or (
        entity.domain == "binary_sensor" and entity.translation_key == "motion"
    )


def _mast_light(registry: er.EntityRegistry, entity: er.RegistryEntry) -> str:
    """The light whose control a boost through this entity needs: its mast's light."""
    if entity.domain == "light" or entity.device_id is None:
        return entity.entity_id
    return next(
        (
            other.entity_id
            for other in er.async_entries_for_device(registry, entity.device_id)
            if other.domain == "light" and other.platform == DOMAIN
        ),
        entity.entity_id,
    )


async def _boost(call: ServiceCall) -> ServiceResponse:
    """Boost the targeted masts and their corridor on every site they belong to.

    A mast is targeted by its light or by its motion sensor (what a motion automation has
    at hand: the trigger's entity).
    """
    hass = call.hass
    referenced = async_extract_referenced_entity_ids(hass, TargetSelection(call.data))
    wanted = referenced.referenced | referenced.indirectly_referenced
    registry = er.async_get(hass)
    per_site: dict[str, list[str]] = {}
    targets: dict[str, list[er.RegistryEntry]] = {}
    for entity_id in wanted:
        entity = registry.async_get(entity_id)
        if entity is None or entity.platform != DOMAIN or not _targets_a_mast(entity):
            continue
        if entity.config_entry_id is None or entity.config_subentry_id is None:
            continue
        asset_ids = per_site.setdefault(entity.config_entry_id, [])
        if entity.config_subentry_id not in asset_ids:
            asset_ids.append(entity.config_subentry_id)
            targets.setdefault(entity.config_entry_id, []).append(entity)
    if not per_site:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_masts")
    sites: list[tuple[CityOpsConfigEntry, list[str]]] = []
    for entry_id, asset_ids in per_site.items():
        entry: CityOpsConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            continue
        # Every site is checked before any mast is boosted: all or nothing. The lights are
        # looked up only for a user the check must ask about (never for an automation's call).
        await async_check(
            hass,
            call.context,
            Action.OPERATE,
            entry=entry,
            entity_ids=(_mast_light(registry, entity) for entity in targets[entry_id]),
        )
        sites.append((entry, asset_ids))
    follow = (
        timedelta(minutes=call.data[ATTR_LONGEST_MOTION]) if call.data[ATTR_FOLLOW_MOTION] else None
    )
    boosted: list[str] = []
    for entry, asset_ids in sites:
        boosted += entry.runtime_data.lighting.boost(
            asset_ids,
            call.data.get(ATTR_RADIUS),
            call.data.get(ATTR_HOLD),
            when_dark=call.data[ATTR_WHEN_DARK],
            follow_motion=follow,
        )
    return cast(ServiceResponse, {"boosted": sorted(boosted)})


async def _plan_collection(call: ServiceCall) -> ServiceResponse:
    """One tour over the due containers of every site named, from the first one's depot."""
    entry_ids = list(dict.fromkeys(call.data[ATTR_CONFIG_ENTRY_ID]))
    sites = [_loaded_site(call.hass, entry_id).runtime_data.waste for entry_id in entry_ids]
    return cast(ServiceResponse, await async_plan_collection(sites))


# -- lending ----------------------------------------------------------------------------------

ATTR_DEVICE_ID = "device_id"
ATTR_COMPARTMENT = "compartment"
ATTR_RESERVATION_ID = "reservation_id"
COMPARTMENT_NUMBER = vol.All(vol.Coerce(int), vol.Range(min=1, max=MAX_COMPARTMENTS))
MINUTES = vol.All(vol.Coerce(int), vol.Range(min=1, max=30 * 1440))
BANK_SCHEMA = vol.Schema({vol.Required(ATTR_DEVICE_ID): cv.string})
RESERVE_SCHEMA = BANK_SCHEMA.extend(
    {
        vol.Optional(ATTR_COMPARTMENT): COMPARTMENT_NUMBER,
        vol.Optional("item_type"): vol.All(cv.string, vol.Length(min=1, max=32)),
        vol.Optional("pickup_window"): vol.All(vol.Coerce(int), vol.Range(min=1, max=7 * 1440)),
        vol.Optional("loan_period"): MINUTES,
        vol.Optional("borrower", default=""): vol.All(cv.string, vol.Length(max=64)),
    }
)
BOOKING_SCHEMA = BANK_SCHEMA.extend(
    {
        vol.Exclusive(ATTR_COMPARTMENT, "booking"): COMPARTMENT_NUMBER,
        vol.Exclusive(ATTR_RESERVATION_ID, "booking"): vol.All(cv.string, vol.Length(max=64)),
    }
)
EXTEND_SCHEMA = BOOKING_SCHEMA.extend({vol.Required("minutes"): MINUTES})
CODE_SCHEMA = BANK_SCHEMA.extend({vol.Required("code"): vol.All(cv.string, vol.Length(max=32))})
COMPARTMENT_SCHEMA = BANK_SCHEMA.extend({vol.Required(ATTR_COMPARTMENT): COMPARTMENT_NUMBER})
OUT_OF_SERVICE_SCHEMA = COMPARTMENT_SCHEMA.extend(
    {
        vol.Optional("out_of_service", default=True): cv.boolean,
        vol.Optional("reason", default=""): vol.All(cv.string, vol.Length(max=200)),
    }
)


async def _bank(
    hass: HomeAssistant, call: ServiceCall, action: Action
) -> tuple[CityOpsConfigEntry, str]:
    """The site and asset id of the bank behind the call's device, if the caller may `action`."""
    entry, asset_id = _find_bank(hass, call)
    await async_check(
        hass,
        call.context,
        action,
        entry=entry,
        entity_ids=device_entities(hass, call.data[ATTR_DEVICE_ID]),
    )
    return entry, asset_id


def _find_bank(hass: HomeAssistant, call: ServiceCall) -> tuple[CityOpsConfigEntry, str]:
    device_id = call.data[ATTR_DEVICE_ID]
    device = dr.async_get(hass).async_get(device_id)
    if device is not None and device.config_entry_id is not None:
        entry: CityOpsConfigEntry | None = hass.config_entries.async_get_entry(
            device.config_entry_id
        )
        if entry is not None and entry.domain == DOMAIN and entry.state is ConfigEntryState.LOADED:
            for domain, asset_id in device.identifiers:
                if domain == DOMAIN and asset_id in entry.runtime_data.site.locker_banks:
                    return entry, asset_id
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="unknown_locker_bank",
        translation_placeholders={"device_id": device_id},
    )


def _booking(bank: LockerBank, call: ServiceCall) -> Compartment:
    if ATTR_RESERVATION_ID in call.data:
        return bank.find_loan(call.data[ATTR_RESERVATION_ID])
    if ATTR_COMPARTMENT in call.data:
        return bank.compartment(call.data[ATTR_COMPARTMENT])
    raise LockerRefused("compartment_or_reservation")


def _minutes(value: int | None) -> timedelta | None:
    return timedelta(minutes=value) if value is not None else None


async def _reserve(call: ServiceCall) -> ServiceResponse:
    entry, asset_id = await _bank(call.hass, call, Action.BOOK)
    try:
        reservation = await entry.runtime_data.lending.async_reserve(
            asset_id,
            compartment=call.data.get(ATTR_COMPARTMENT),
            item_type=call.data.get("item_type"),
            pickup_window=_minutes(call.data.get("pickup_window")),
            loan_period=_minutes(call.data.get("loan_period")),
            borrower=call.data["borrower"],
            context=call.context,
        )
    except LockerRefused as err:
        raise refusal(err) from None
    loan = reservation.loan
    bank = entry.runtime_data.site.locker_banks[asset_id]
    spec = bank.compartments[loan.compartment].spec
    return {
        "reservation_id": loan.reservation_id,
        "bank": bank.spec.name,
        "compartment": loan.compartment,
        "item": spec.item,
        "item_type": spec.item_type,
        "code": reservation.code,
        "return_code": reservation.return_code,
        "pickup_from": loan.reserved_at.isoformat(),
        "pickup_until": loan.pickup_until.isoformat(),
        "loan_period_min": round(loan.loan_period.total_seconds() / 60),
    }


async def _release_code(call: ServiceCall) -> ServiceResponse:
    entry, asset_id = await _bank(call.hass, call, Action.OPERATE)
    try:
        number = await entry.runtime_data.lending.async_release_code(
            asset_id, call.data["code"], call.context
        )
    except LockerRefused as err:
        raise refusal(err) from None
    return {"compartment": number}


type BankChange = Callable[[LockerBank, Compartment, datetime, Mapping[str, Any]], LockerUpdate]


def _bank_service(
    action: Action, change: BankChange
) -> Callable[[ServiceCall], Coroutine[Any, Any, ServiceResponse]]:
    """A service that changes one compartment of one bank and answers with its new state."""

    async def handle(call: ServiceCall) -> ServiceResponse:
        entry, asset_id = await _bank(call.hass, call, action)
        found: list[Compartment] = []

        def run(bank: LockerBank, now: datetime) -> LockerUpdate:
            compartment = _booking(bank, call)
            found.append(compartment)
            return change(bank, compartment, now, call.data)

        try:
            await entry.runtime_data.lending.async_change(asset_id, run, call.context)
        except LockerRefused as err:
            raise refusal(err) from None
        compartment = found[0]
        loan = compartment.status.loan
        return {
            "compartment": compartment.spec.number,
            "state": compartment.state.value,
            "loan_until": loan.loan_until.isoformat() if loan and loan.loan_until else None,
        }

    return handle


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the site services; each handler asks `permissions` who may call it."""
    optional = SupportsResponse.OPTIONAL
    register = hass.services.async_register
    register(DOMAIN, "import_assets", _import_assets, FILE_SCHEMA, optional)
    register(DOMAIN, "export_assets", _export_assets, FILE_SCHEMA, optional)
    register(DOMAIN, "plan_collection", _plan_collection, SITES_SCHEMA, SupportsResponse.ONLY)
    register(DOMAIN, "boost", _boost, BOOST_SCHEMA, optional)
    # The codes exist only in the answer: a call that does not take it would book for nothing.
    register(DOMAIN, "reserve", _reserve, RESERVE_SCHEMA, SupportsResponse.ONLY)
    register(DOMAIN, "release_code", _release_code, CODE_SCHEMA, optional)
    register(
        DOMAIN,
        "cancel",
        _bank_service(Action.BOOK, lambda bank, c, now, data: bank.cancel(now, c)),
        BOOKING_SCHEMA,
        optional,
    )
    register(
        DOMAIN,
        "extend",
        _bank_service(
            Action.BOOK,
            lambda bank, c, now, data: bank.extend(now, c, timedelta(minutes=data["minutes"])),
        ),
        EXTEND_SCHEMA,
        optional,
    )
    # What frees or opens a compartment without a code is for admins.
    register(
        DOMAIN,
        "mark_returned",
        _bank_service(Action.ADMINISTER, lambda bank, c, now, data: bank.mark_returned(now, c)),
        COMPARTMENT_SCHEMA,
        optional,
    )
    register(
        DOMAIN,
        "set_out_of_service",
        _bank_service(
            Action.ADMINISTER,
            lambda bank, c, now, data: bank.set_out_of_service(
                now, c, data["out_of_service"], data["reason"]
            ),
        ),
        OUT_OF_SERVICE_SCHEMA,
        optional,
    )
    register(
        DOMAIN,
        "open_for_maintenance",
        _bank_service(
            Action.ADMINISTER, lambda bank, c, now, data: bank.open_for_maintenance(now, c)
        ),
        COMPARTMENT_SCHEMA,
        optional,
    )
