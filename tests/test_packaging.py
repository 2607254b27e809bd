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
            or key in strings["issues"]
            or any(key in platform for platform in strings["entity"].values())
        )
        assert known, key
    for reason in set(re.findall(r'async_abort\(reason="(\w+)"\)', code)):
        assert reason in strings["config"]["abort"], reason
    for error in set(re.findall(r'errors\[[^]]+\] = "(\w+)"', code)):
        assert (
            error in strings["config"]["error"]
            or error in strings["options"].get("error", {})
            or any(error in subentry["error"] for subentry in strings["config_subentries"].values())
        ), error
    icons = load(INTEGRATION / "icons.json")
    for platform, entities in strings["entity"].items():
        for key in entities:
            assert key in icons["entity"].get(platform, {}) or platform == "sensor", key
    services = set(re.findall(r'DOMAIN,\s*"(\w+)"', code))
    assert services == set(strings["services"]) == set(icons["services"])


# The 54 rules of Home Assistant 2026.10's integration quality scale (hassfest's list).
QUALITY_RULES = {
    "bronze": (
        "action-setup appropriate-polling brands common-modules config-flow-test-coverage "
        "config-flow dependency-transparency docs-actions docs-high-level-description "
        "docs-installation-instructions docs-removal-instructions entity-event-setup "
        "entity-unique-id has-entity-name runtime-data test-before-configure "
        "test-before-setup unique-config-entry"
    ),
    "silver": (
        "action-exceptions config-entry-unloading docs-configuration-parameters "
        "docs-installation-parameters entity-unavailable integration-owner "
        "log-when-unavailable parallel-updates reauthentication-flow test-coverage"
    ),
    "gold": (
        "devices diagnostics discovery-update-info discovery docs-conditions "
        "docs-data-update docs-examples docs-known-limitations docs-supported-devices "
        "docs-supported-functions docs-triggers docs-troubleshooting docs-use-cases "
        "dynamic-devices entity-category entity-device-class entity-disabled-by-default "
        "entity-translations exception-translations icon-translations reconfiguration-flow "
        "repair-issues stale-devices"
    ),
    "platinum": "async-dependency inject-websession strict-typing",
}


def quality_scale() -> dict[str, Any]:
    rules: dict[str, Any] = {}
    name = ""
    for line in (INTEGRATION / "quality_scale.yaml").read_text("utf-8").splitlines():
        if match := re.fullmatch(r"  ([a-z-]+):(?: (\w+))?", line):
            name = match[1]
            rules[name] = {"status": match[2]} if match[2] else {}
        elif match := re.fullmatch(r"    (status|comment): (.+)", line):
            rules[name][match[1]] = match[2]
    return rules


def test_quality_scale_lists_every_rule_with_an_honest_status() -> None:
    rules = quality_scale()
    expected = {rule for level in QUALITY_RULES.values() for rule in level.split()}
    assert len(expected) == 54
    assert set(rules) == expected
    for name, rule in rules.items():
        assert rule.get("status") in ("done", "todo", "exempt"), name
        if rule["status"] != "done":
            assert rule.get("comment"), f"{name}: say why it is {rule['status']}"


def test_no_translation_reads_as_html() -> None:
    """Hassfest refuses strings with <tags> (the frontend's markdown drops them too)."""
    for path in (INTEGRATION / "strings.json", *sorted((INTEGRATION / "translations").glob("*"))):
        for key, text in leaves(load(path)).items():
            assert not re.search(r"<[A-Za-z/][^>]*>", text), f"{path.name} {key}: {text}"
