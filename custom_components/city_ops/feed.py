"""The open availability feed of a site, in the spirit of GBFS: banks are stations.

Three documents: `gbfs.json` (what there is), `station_information.json` (where the banks are,
what they lend) and `station_status.json` (what is free now). No personal data, no Home
Assistant ids: a station's id is made from the bank's name. The schema is in
docs/availability-feed.schema.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
import hashlib
import json
from typing import Any

from .booking_page import BankOffer

FEED_VERSION = "1.0"
TTL_S = 30
DOCUMENTS = ("gbfs", "station_information", "station_status")


def _wrap(data: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "last_updated": int(now.timestamp()),
        "ttl": TTL_S,
        "version": FEED_VERSION,
        "data": data,
    }


def discovery(base_url: str, now: datetime) -> dict[str, Any]:
    """gbfs.json: the feed's documents."""
    feeds = [
        {"name": name, "url": f"{base_url}/{name}.json"}
        for name in ("station_information", "station_status")
    ]
    return _wrap({"feeds": feeds}, now)


def station_information(site: str, banks: Sequence[BankOffer], now: datetime) -> dict[str, Any]:
    """Where the banks are and what each lends."""
    stations = []
    for bank in banks:
        station: dict[str, Any] = {
            "station_id": bank.station_id,
            "name": bank.name,
            "lat": round(bank.latitude, 6),
            "lon": round(bank.longitude, 6),
            "capacity": bank.capacity,
            "item_types": [{"item_type": item.item_type, "name": item.item} for item in bank.items],
        }
        if bank.description:
            station["address"] = bank.description
        stations.append(station)
    return _wrap({"system_name": site, "stations": stations}, now)


def station_status(banks: Sequence[BankOffer], now: datetime) -> dict[str, Any]:
    """What each bank has free now, and whether it lends at all."""
    stations = [
        {
            "station_id": bank.station_id,
            "is_installed": True,
            "is_renting": bank.in_service,
            "is_returning": True,
            "num_items_available": sum(item.free for item in bank.items),
            "num_compartments_disabled": bank.disabled,
            "items_available": [
                {"item_type": item.item_type, "count": item.free} for item in bank.items
            ],
            "last_reported": int(now.timestamp()),
        }
        for bank in banks
    ]
    return _wrap({"stations": stations}, now)


def entity_tag(document: dict[str, Any]) -> str:
    """A weak ETag of what a document says (its timestamps left out)."""
    data = json.loads(json.dumps(document["data"]))
    for station in data.get("stations", []):
        station.pop("last_reported", None)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]
    return f'W/"{digest}"'
