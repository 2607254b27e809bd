"""Diagnostics of a site: settings, message counters and each container's state."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .runtime import CityOpsConfigEntry

# Locker codes, borrower references and broker credentials must never leave the instance.
TO_REDACT = {"code", "code_hash", "salt", "borrower", "password", "username"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: CityOpsConfigEntry
) -> dict[str, Any]:
    """Return what support needs to see why a site behaves as it does."""
    runtime = entry.runtime_data
    stats = runtime.stats
    containers = {}
    for asset_id, container in runtime.site.containers.items():
        asset = runtime.assets[asset_id]
        status = container.to_dict()
        status.pop("fill_history")
        status.pop("temperature_history")
        containers[asset.name] = {
            "source": {"kind": asset.source_kind, "device": asset.device},
            "spec": dict(asset.params),
            "status": status,
            "fill_rate_per_hour": container.fill_rate(),
            "readings_since_emptied": len(container.status.fill_history),
        }
    return async_redact_data(
        {
            "entry": {
                "title": entry.title,
                "data": dict(entry.data),
                "options": dict(entry.options),
            },
            "messages": {
                "received": stats.received,
                "applied": stats.applied,
                "rejected": dict(stats.rejected),
                "rejected_total": sum(stats.rejected.values()),
                "rejected_fields": dict(stats.rejected_fields),
                "unknown_devices": stats.unknown_devices,
                "internal_errors": stats.internal_errors,
                "log_lines_suppressed": runtime.log.suppressed,
            },
            "containers": containers,
        },
        TO_REDACT,
    )
