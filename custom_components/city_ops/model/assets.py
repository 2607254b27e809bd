"""The asset file: a GeoJSON FeatureCollection of Points, one feature per asset."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import math
from typing import Any

from ..sources.reading import SourceKind
from ..sources.zha import ieee_key
from .container import WasteKind
from .locker import compartments_param

ASSET_KINDS = ("container", "mast", "locker_bank")
CONTAINER_KEYS = ("waste_kind", "volume_l", "depth_mm", "sensor_offset_mm", "report_interval_s")
MAST_KEYS = (
    "path",
    "rated_power_w",
    "neighbours",
    "motion_source",
    "lux_source",
    "base_level",
    "boost_level",
    "hold_s",
)
LOCKER_BANK_KEYS = ("compartments", "pickup_window_min", "loan_period_min", "report_interval_s")
PARAM_KEYS = {"container": CONTAINER_KEYS, "mast": MAST_KEYS, "locker_bank": LOCKER_BANK_KEYS}
MAST_SOURCE_KINDS = ("zigbee2mqtt", "zha")
LOCKER_BANK_SOURCE_KINDS = ("native", "zha")
SOURCE_KINDS = {
    "container": ("ttn", "chirpstack", "zigbee2mqtt", "native"),
    "mast": MAST_SOURCE_KINDS,
    "locker_bank": LOCKER_BANK_SOURCE_KINDS,
}
CONTAINER_SOURCE_KINDS = SOURCE_KINDS["container"]
MAX_FEATURES = 5000
MAX_NAME = 64
MAX_DEVICE = 128


class AssetFileError(Exception):
    """The file as a whole is unusable; `problems` lists each feature's faults."""

    def __init__(self, problems: list[str]) -> None:
        """Keep every problem so the operator can fix the file in one go."""
        super().__init__("; ".join(problems[:20]))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Asset:
    """One asset as the site stores it (the data of a config subentry)."""

    kind: str
    name: str
    latitude: float
    longitude: float
    source_kind: str
    device: str
    params: Mapping[str, Any]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_subentry_data(self) -> dict[str, Any]:
        """Flatten into the dictionary a config subentry keeps."""
        return {
            "name": self.name,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "source_kind": self.source_kind,
            "device": self.device,
            **self.params,
            "extra": dict(self.extra),
        }


def _finite(value: Any) -> bool:
    """JSON numbers only, finite, and within float range (JSON integers have no size limit)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _int(values: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = values.get(key, default)
    if not _finite(value):
        raise ValueError(f"{key} must be a number")
    if value != int(value) or not low <= value <= high:
        raise ValueError(f"{key} must be a whole number from {low} to {high}")
    return int(value)


def container_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a container's parameters (one place for the flow and the file import)."""
    kind = values.get("waste_kind", WasteKind.RESIDUAL)
    if not isinstance(kind, str) or kind not in {kind.value for kind in WasteKind}:
        raise ValueError(f"waste_kind must be one of {', '.join(WasteKind)}")
    return {
        "waste_kind": str(kind),
        "volume_l": _int(values, "volume_l", 1100, 1, 100_000),
        "depth_mm": _int(values, "depth_mm", 1200, 50, 10_000),
        "sensor_offset_mm": _int(values, "sensor_offset_mm", 100, 0, 5_000),
        "report_interval_s": _int(values, "report_interval_s", 3600, 10, 7 * 86_400),
    }


def _percent(values: Mapping[str, Any], key: str) -> float | None:
    value = values.get(key)
    if value is None:
        return None
    if not _finite(value) or not 0 <= value <= 100:
        raise ValueError(f"{key} must be a percentage from 0 to 100")
    return float(value)


def mast_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a mast's parameters (one place for the flow and the file import)."""
    path = values.get("path", "")
    if not isinstance(path, str) or len(path) > MAX_NAME:
        raise ValueError("path must be a text of at most 64 characters")
    neighbours = values.get("neighbours", [])
    if not isinstance(neighbours, list) or not all(
        isinstance(name, str) and 0 < len(name) <= MAX_NAME for name in neighbours
    ):
        raise ValueError("neighbours must be a list of mast names")
    params: dict[str, Any] = {
        "path": path.strip(),
        "rated_power_w": _int(values, "rated_power_w", 40, 1, 5_000),
        "neighbours": sorted({name.strip() for name in neighbours}),
        "motion_source": None,
        "lux_source": None,
        "base_level": _percent(values, "base_level"),
        "boost_level": _percent(values, "boost_level"),
        "hold_s": None,
    }
    for key in ("motion_source", "lux_source"):
        if values.get(key) is not None:
            kind, device = source_binding(values[key])
            if kind not in MAST_SOURCE_KINDS:
                raise ValueError(f"{key}.kind must be one of {', '.join(MAST_SOURCE_KINDS)}")
            params[key] = {"kind": kind, "device": device}
    if values.get("hold_s") is not None:
        params["hold_s"] = _int(values, "hold_s", 120, 5, 86_400)
    return params


def locker_bank_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a locker bank's parameters (one place for the flow and the file import)."""
    return {
        "compartments": compartments_param(values.get("compartments")),
        "pickup_window_min": _int(values, "pickup_window_min", 120, 1, 7 * 1440),
        "loan_period_min": _int(values, "loan_period_min", 240, 1, 30 * 1440),
        **bank_report_interval(values),
    }


def bank_report_interval(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a bank controller's report interval; only controllers with a heartbeat have one."""
    if values.get("report_interval_s") is None:
        return {}
    return {"report_interval_s": _int(values, "report_interval_s", 300, 10, 86_400)}


def source_binding(source: Any) -> tuple[str, str]:
    """Validate `{"kind": ..., "device": ...}`."""
    if not isinstance(source, Mapping):
        raise ValueError("source must be an object with kind and device")
    kind = source.get("kind")
    if not isinstance(kind, str) or kind not in {kind.value for kind in SourceKind}:
        raise ValueError(f"source.kind must be one of {', '.join(SourceKind)}")
    device = source.get("device")
    if not isinstance(device, str) or not device.strip() or len(device) > MAX_DEVICE:
        raise ValueError("source.device must be a non-empty text")
    if any(char in device for char in "+#\0") or (kind != SourceKind.ZIGBEE2MQTT and "/" in device):
        raise ValueError("source.device contains characters MQTT topics cannot carry")
    device = device.strip()
    if kind == SourceKind.ZHA:
        # Readings name ZHA devices as zigpy prints them; any other spelling would never match.
        ieee = ieee_key(device)
        if ieee is None:
            raise ValueError("source.device must be a Zigbee IEEE address")
        return str(kind), ieee
    return str(kind), device.lower() if kind == SourceKind.CHIRPSTACK else device


def coordinates(latitude: Any, longitude: Any) -> tuple[float, float]:
    """Validate a WGS84 position."""
    for value in (latitude, longitude):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError("coordinates must be numbers")
    if not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
        raise ValueError("coordinates out of range")
    return float(latitude), float(longitude)


def _feature(index: int, feature: Any) -> Asset:
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise ValueError("not a GeoJSON Feature")
    geometry = feature.get("geometry")
    if not isinstance(geometry, Mapping) or geometry.get("type") != "Point":
        raise ValueError("geometry must be a Point")
    point = geometry.get("coordinates")
    if not isinstance(point, list | tuple) or len(point) < 2:
        raise ValueError("Point needs [longitude, latitude]")
    latitude, longitude = coordinates(point[1], point[0])
    props = feature.get("properties")
    if not isinstance(props, Mapping):
        raise ValueError("properties missing")
    kind = props.get("kind")
    if kind not in ASSET_KINDS:
        raise ValueError(f"kind {kind!r} is not supported (supported: {', '.join(ASSET_KINDS)})")
    name = props.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise ValueError("name must be a non-empty text of at most 64 characters")
    source_kind, device = source_binding(props.get("source"))
    if source_kind not in SOURCE_KINDS[kind]:
        raise ValueError(
            f"a {kind.replace('_', ' ')}'s source.kind must be one of "
            f"{', '.join(SOURCE_KINDS[kind])}"
        )
    if kind == "mast":
        params = mast_params(props)
    elif kind == "locker_bank":
        params = locker_bank_params(props)
    else:
        params = container_params(props)
    known = {"kind", "name", "source", *PARAM_KEYS[kind]}
    extra = {key: value for key, value in props.items() if key not in known}
    return Asset(kind, name.strip(), latitude, longitude, source_kind, device, params, extra)


def parse_asset_file(document: Any, existing: Iterable[Asset] = ()) -> list[Asset]:
    """Validate a whole FeatureCollection against the site's assets.

    Raise with every problem found, or return every asset: a file never half-imports.
    """
    if not isinstance(document, Mapping) or document.get("type") != "FeatureCollection":
        raise AssetFileError(["the file is not a GeoJSON FeatureCollection"])
    features = document.get("features")
    if not isinstance(features, list):
        raise AssetFileError(["features must be a list"])
    if len(features) > MAX_FEATURES:
        raise AssetFileError([f"more than {MAX_FEATURES} features"])
    assets: list[Asset] = []
    problems: list[str] = []
    for index, feature in enumerate(features):
        try:
            assets.append(_feature(index, feature))
        except (ValueError, TypeError, OverflowError) as err:
            label = _label(index, feature)
            problems.append(f"feature {index}{label}: {err}")
    existing = list(existing)
    problems.extend(_conflicts(assets))
    problems.extend(check_against_site(assets, existing))
    kinds = {a.name.casefold(): a.kind for a in existing}
    for asset in assets:
        other = kinds.get(asset.name.casefold())
        if other is not None and other != asset.kind:
            problems.append(f"{asset.name!r}: the site already has a {other} of that name")
    masts = {a.name for a in [*assets, *existing] if a.kind == "mast"}
    for asset in assets:
        for other in asset.params.get("neighbours", ()) if asset.kind == "mast" else ():
            if other not in masts:
                problems.append(f"{asset.name!r}: neighbour {other!r} is not a mast of the site")
    if problems:
        raise AssetFileError(problems)
    return assets


def _label(index: int, feature: Any) -> str:
    try:
        name = feature["properties"]["name"]
    except KeyError, TypeError, IndexError:
        return ""
    return f" ({str(name)[:MAX_NAME]})"


def _conflicts(assets: Iterable[Asset]) -> list[str]:
    """Names are unique within a site, and a device feeds only one asset."""
    problems: list[str] = []
    names: set[str] = set()
    bindings: dict[tuple[str, str], str] = {}
    for asset in assets:
        key = asset.name.casefold()
        if key in names:
            problems.append(f"name {asset.name!r} appears twice")
        names.add(key)
        binding = (asset.source_kind, asset.device)
        if binding in bindings:
            problems.append(
                f"{asset.name!r} and {bindings[binding]!r} share the device {asset.device!r}"
            )
        bindings.setdefault(binding, asset.name)
    return problems


def check_against_site(assets: Iterable[Asset], existing: Iterable[Asset]) -> list[str]:
    """Bindings already used by another asset of the site (a same-named asset may keep its own)."""
    taken = {(a.source_kind, a.device): a.name for a in existing}
    problems = []
    for asset in assets:
        owner = taken.get((asset.source_kind, asset.device))
        if owner is not None and owner.casefold() != asset.name.casefold():
            problems.append(f"{asset.name!r}: device {asset.device!r} already feeds {owner!r}")
    return problems


def asset_from_subentry(kind: str, data: Mapping[str, Any]) -> Asset:
    """Rebuild an Asset from a stored subentry."""
    params = {key: data[key] for key in PARAM_KEYS[kind] if key in data}
    return Asset(
        kind=kind,
        name=data["name"],
        latitude=data["latitude"],
        longitude=data["longitude"],
        source_kind=data["source_kind"],
        device=data["device"],
        params=params,
        extra=data.get("extra") or {},
    )


def export_asset_file(assets: Iterable[Asset]) -> dict[str, Any]:
    """Write assets back as a FeatureCollection, unknown properties included unchanged."""
    features = []
    for asset in sorted(assets, key=lambda a: (a.kind, a.name.casefold())):
        properties: dict[str, Any] = {
            **asset.extra,
            "kind": asset.kind,
            "name": asset.name,
            "source": {"kind": asset.source_kind, "device": asset.device},
            **asset.params,
        }
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [asset.longitude, asset.latitude]},
                "properties": properties,
            }
        )
    return {"type": "FeatureCollection", "features": features}
