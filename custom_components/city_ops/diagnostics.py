"""Diagnostics of a site: settings, message counters, containers and locker banks."""

from __future__ import annotations

from collections import Counter
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .booking import booking_diagnostics
from .budget import entity_limit
from .runtime import CityOpsConfigEntry

# Locker codes (and their hashes), borrower references and broker credentials never leave.
TO_REDACT = {
    "code",
    "return_code",
    "pickup_hash",
    "return_hash",
    "unlock_hash",
    "borrower",
    "password",
    "username",
    "booking_access_key",
}


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
    lending = runtime.lending
    locker_banks = {}
    for asset_id, bank in runtime.site.locker_banks.items():
        asset = runtime.assets[asset_id]
        stored = bank.to_dict()
        locker_banks[asset.name] = {
            "source": {"kind": asset.source_kind, "device": asset.device},
            "spec": dict(asset.params),
            "compartments": {
                number: {**state, "state": bank.compartments[int(number)].state.value}
                for number, state in stored["compartments"].items()
            },
            "keypad": stored["keypad"],
            "loans_in_history": len(bank.history),
            "unexpected_facts": stored["unexpected"],
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
            # The entity budget: how close the site is to Home Assistant's per-entry limit.
            "entities": {
                "enabled": runtime.budget.enabled_count(),
                "limit": entity_limit(),
                "room": runtime.budget.room(),
                "not_created": dict(
                    sorted(Counter(p.slot.key for p in runtime.budget.missing.values()).items())
                ),
            },
            "containers": containers,
            "lockers": {
                "codes_accepted": lending.codes_accepted,
                "codes_refused": lending.codes_refused,
                "entries_while_keypad_locked": lending.entries_while_locked,
                "commands_sent": lending.commands_sent,
                "command_errors": lending.command_errors,
                "codes_repeated": lending.codes_repeated,
                "stale_entries": lending.stale_entries,
                "refused_bank_unreachable": lending.unreachable,
                "log_lines_suppressed": lending.log.suppressed,
                "banks": locker_banks,
            },
            "booking_page": booking_diagnostics(hass, entry.entry_id),
        },
        TO_REDACT,
    )
