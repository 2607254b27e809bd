"""Site services: import and export the asset file, plan the collection tour."""

from __future__ import annotations

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
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv, entity_registry as er
from homeassistant.helpers.target import TargetSelection, async_extract_referenced_entity_ids
from homeassistant.util import dt as dt_util
from homeassistant.util.file import write_utf8_file_atomic
import probatio as vol

from .const import DOMAIN, SUBENTRY_CONTAINER, SUBENTRY_MAST
from .model.assets import (
    AssetFileError,
    export_asset_file,
    parse_asset_file,
)
from .runtime import CityOpsConfigEntry

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_PATH = "path"
MAX_FILE_BYTES = 10 * 1024 * 1024

SITE_SCHEMA = vol.Schema({vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string})
FILE_SCHEMA = SITE_SCHEMA.extend({vol.Required(ATTR_PATH): cv.string})


def _site(hass: HomeAssistant, call: ServiceCall) -> CityOpsConfigEntry:
    entry_id = call.data[ATTR_CONFIG_ENTRY_ID]
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
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or candidate == root:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="path_outside_config",
            translation_placeholders={"path": relative},
        )
    return candidate


def _read_json(path: Path) -> Any:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


async def _import_assets(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    entry = _site(hass, call)
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

    existing_by_name = {
        (sub.subentry_type, sub.data["name"].casefold()): sub
        for sub in entry.subentries.values()
        if sub.subentry_type in (SUBENTRY_CONTAINER, SUBENTRY_MAST)
    }
    added: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    # One reload after the whole file rather than one per asset.
    runtime.bulk_update = True
    entries = hass.config_entries
    for asset in assets:
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
    if added or updated:
        entries.async_schedule_reload(entry.entry_id)
    else:
        runtime.bulk_update = False
    return cast(ServiceResponse, {"added": added, "updated": updated, "unchanged": unchanged})


async def _export_assets(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    entry = _site(hass, call)
    path = _config_path(hass, call.data[ATTR_PATH])
    document = export_asset_file(entry.runtime_data.assets.values())
    text = json.dumps(document, indent=2, ensure_ascii=False)
    try:
        await hass.async_add_executor_job(write_utf8_file_atomic, str(path), text)
    except (OSError, HomeAssistantError) as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="file_unwritable",
            translation_placeholders={"path": call.data[ATTR_PATH], "error": str(err)[:200]},
        ) from err
    return {"path": str(path), "count": len(document["features"])}


ATTR_RADIUS = "radius"
ATTR_HOLD = "hold"
BOOST_SCHEMA = vol.Schema(
    {
        **cv.ENTITY_SERVICE_FIELDS,
        vol.Optional(ATTR_RADIUS): vol.All(vol.Coerce(int), vol.Range(min=0, max=20)),
        vol.Optional(ATTR_HOLD): vol.All(vol.Coerce(float), vol.Range(min=1, max=86_400)),
    }
)


@callback
def _boost(call: ServiceCall) -> ServiceResponse:
    """Boost the targeted masts and their corridor on every site they belong to."""
    hass = call.hass
    referenced = async_extract_referenced_entity_ids(hass, TargetSelection(call.data))
    wanted = referenced.referenced | referenced.indirectly_referenced
    registry = er.async_get(hass)
    per_site: dict[str, list[str]] = {}
    for entity_id in wanted:
        entity = registry.async_get(entity_id)
        if entity is None or entity.platform != DOMAIN or entity.domain != "light":
            continue
        if entity.config_entry_id is None or entity.config_subentry_id is None:
            continue
        per_site.setdefault(entity.config_entry_id, []).append(entity.config_subentry_id)
    if not per_site:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_masts")
    boosted: list[str] = []
    for entry_id, asset_ids in per_site.items():
        entry: CityOpsConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            continue
        boosted += entry.runtime_data.lighting.boost(
            asset_ids, call.data.get(ATTR_RADIUS), call.data.get(ATTR_HOLD)
        )
    return cast(ServiceResponse, {"boosted": sorted(boosted)})


async def _plan_collection(call: ServiceCall) -> ServiceResponse:
    entry = _site(call.hass, call)
    return cast(ServiceResponse, entry.runtime_data.collection_plan(dt_util.utcnow()))


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the site services."""
    hass.services.async_register(
        DOMAIN, "import_assets", _import_assets, FILE_SCHEMA, SupportsResponse.OPTIONAL
    )
    hass.services.async_register(
        DOMAIN, "export_assets", _export_assets, FILE_SCHEMA, SupportsResponse.OPTIONAL
    )
    hass.services.async_register(
        DOMAIN, "plan_collection", _plan_collection, SITE_SCHEMA, SupportsResponse.ONLY
    )
    hass.services.async_register(DOMAIN, "boost", _boost, BOOST_SCHEMA, SupportsResponse.OPTIONAL)
