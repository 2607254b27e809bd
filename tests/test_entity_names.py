"""Entity ids from translated names: our plain form makes the ids Home Assistant's slugify makes."""

from __future__ import annotations

import json
from pathlib import Path

from homeassistant.util import slugify
import pytest

from custom_components.city_ops.entity import plain_object_id

COMPONENT = Path(__file__).resolve().parents[1] / "custom_components" / "city_ops"


def entity_names() -> list[tuple[str, str]]:
    """(where, name) of every entity name in strings.json and every translation."""
    names = []
    for path in [COMPONENT / "strings.json", *sorted((COMPONENT / "translations").glob("*.json"))]:
        document = json.loads(path.read_text(encoding="utf-8"))
        for platform, keys in document.get("entity", {}).items():
            for key, texts in keys.items():
                if "name" in texts:
                    name = texts["name"].replace("{number}", "12")
                    names.append((f"{path.name} {platform}.{key}", name))
    return names


@pytest.mark.parametrize(("where", "name"), entity_names())
def test_every_translated_name_gives_the_id_home_assistant_makes(where: str, name: str) -> None:
    plain = plain_object_id(name)
    assert plain.isascii(), where
    for device in ("Container 0042", "Mast 7", "Fächer Süd"):  # the device name comes first
        assert slugify(f"{device} {plain}") == slugify(f"{device} {name}"), where


def test_german_names_need_their_plain_form_and_others_are_left_alone() -> None:
    assert plain_object_id("Füllstand") == "Fullstand"
    assert plain_object_id("Beleuchtungsstärke") == "Beleuchtungsstarke"
    assert plain_object_id("Fach 3 Tür") == "Fach 3 Tur"
    assert plain_object_id("Straße") == "Strasse"
    assert plain_object_id("Fill level") == "Fill level"
    # Letters that are not a base letter with a diaeresis are Home Assistant's to transliterate.
    assert plain_object_id("Łódź") == "Łódź"
    assert plain_object_id("Füllstand ✓") == "Füllstand ✓"
    assert any(not name.isascii() for _, name in entity_names())  # German names are checked
