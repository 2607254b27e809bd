"""What HACS and hassfest look at, and that German and English say the same things."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

from PIL import Image
import pytest

ROOT = Path(__file__).resolve().parents[1]
INTEGRATION = ROOT / "custom_components" / "city_ops"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Plain file checks: no Home Assistant instance needed."""


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def leaves(tree: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(tree, dict):
        found: dict[str, str] = {}
        for key, value in tree.items():
            found.update(leaves(value, f"{prefix}.{key}" if prefix else key))
        return found
    return {prefix: tree}


def test_manifest_has_every_key_hacs_and_hassfest_want() -> None:
    manifest = load(INTEGRATION / "manifest.json")
    assert manifest["domain"] == "city_ops"
    assert manifest["name"] == "City Operations"
    assert manifest["config_flow"] is True
    assert manifest["dependencies"] == ["mqtt"]
    assert manifest["iot_class"] == "local_push"
    assert manifest["integration_type"] == "hub"
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    for key in ("codeowners", "documentation", "issue_tracker", "requirements"):
        assert key in manifest
    # hassfest: domain and name first, the rest sorted.
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])


def test_hacs_manifest_and_brand() -> None:
    hacs = load(ROOT / "hacs.json")
    assert hacs["name"] == "City Operations"
    assert re.fullmatch(r"\d{4}\.\d+\.\d+", hacs["homeassistant"])
    with Image.open(INTEGRATION / "brand" / "icon.png") as icon:
        assert icon.size == (256, 256)
    with Image.open(INTEGRATION / "brand" / "logo.png") as logo:
        assert logo.size[1] == 256
    assert (ROOT / "LICENSE").is_file()


def test_english_strings_and_translations_agree() -> None:
    strings = load(INTEGRATION / "strings.json")
    assert strings == load(INTEGRATION / "translations" / "en.json")


def test_german_translates_every_english_string() -> None:
    english = leaves(load(INTEGRATION / "translations" / "en.json"))
    german = leaves(load(INTEGRATION / "translations" / "de.json"))
    assert set(german) == set(english)
    for key, text in english.items():
        placeholders = set(re.findall(r"{(\w+)}", text))
        assert set(re.findall(r"{(\w+)}", german[key])) == placeholders, key


def test_every_translation_key_in_the_code_is_translated() -> None:
    strings = load(INTEGRATION / "strings.json")
    code = "\n".join(path.read_text(encoding="utf-8") for path in INTEGRATION.rglob("*.py"))
    for key in set(re.findall(r'translation_key="(\w+)"', code)):
        known = (
            key in strings["exceptions"]
            or key in strings["selector"]
            or any(key in platform for platform in strings["entity"].values())
        )
        assert known, key
    for reason in set(re.findall(r'async_abort\(reason="(\w+)"\)', code)):
        assert reason in strings["config"]["abort"], reason
    for error in set(re.findall(r'errors\[[^]]+\] = "(\w+)"', code)):
        assert error in strings["config"]["error"] or any(
            error in subentry["error"] for subentry in strings["config_subentries"].values()
        ), error
    icons = load(INTEGRATION / "icons.json")
    for platform, entities in strings["entity"].items():
        for key in entities:
            assert key in icons["entity"].get(platform, {}) or platform == "sensor", key
    services = set(re.findall(r'DOMAIN,\s*"(\w+)"', code))
    assert services == set(strings["services"]) == set(icons["services"])
