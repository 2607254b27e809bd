"""The layering rule of DESIGN.md: `model/` and `sources/` never import Home Assistant.

Only `sources/zha.py` may, because zigpy devices are reached through ZHA's gateway.
"""

from __future__ import annotations

import ast
from pathlib import Path
import subprocess
import sys

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "custom_components" / "city_ops"
PURE_PACKAGES = ("model", "sources")
EXEMPT = {Path("sources/zha.py")}
FORBIDDEN = "homeassistant"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Plain pytest here: override the package-wide fixture that starts a `hass` per test."""


def _pure_modules() -> list[Path]:
    return sorted(
        path
        for package in PURE_PACKAGES
        for path in (PACKAGE / package).rglob("*.py")
        if path.relative_to(PACKAGE) not in EXEMPT
    )


def _module_parts(path: Path) -> list[str]:
    """Dotted name of a module below the integration, as parts (`model/site.py` -> model.site)."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path, source: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import; relative ones resolved inside city_ops."""
    tree = ast.parse(source, filename=str(path))
    package = ["custom_components", "city_ops", *_module_parts(path)]
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def _violations(path: Path, source: str | None = None) -> list[str]:
    if source is None:
        source = path.read_text(encoding="utf-8")
    problems = []
    for line, module in _imports(path, source):
        top = module.split(".")[0]
        if top == FORBIDDEN:
            problems.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
        elif module.startswith("custom_components.city_ops"):
            # Inside the integration, pure code may only reach other pure code: the HA layer
            # (runtime, entity, const, platforms) would bring Home Assistant in transitively.
            inner = module.split(".")[2:3]
            if inner and inner[0] not in PURE_PACKAGES:
                problems.append(
                    f"{path.relative_to(PACKAGE)}:{line} imports the HA layer: {module}"
                )
    return problems


def test_pure_modules_exist() -> None:
    """Guard against a vacuous pass after a move or rename."""
    names = {str(path.relative_to(PACKAGE)) for path in _pure_modules()}
    assert {
        "model/__init__.py",
        "model/container.py",
        "model/tour.py",
        "model/assets.py",
        "sources/__init__.py",
        "sources/reading.py",
        "sources/lorawan.py",
        "sources/zigbee2mqtt.py",
        "sources/native.py",
    } <= names


@pytest.mark.parametrize("path", _pure_modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_home_assistant_import(path: Path) -> None:
    assert _violations(path) == []


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("import homeassistant", True),
        ("import homeassistant.core as ha", True),
        ("from homeassistant.core import HomeAssistant", True),
        ("from homeassistant import core", True),
        ("def f():\n    from homeassistant.util import dt\n", True),
        ("if TYPE_CHECKING:\n    from homeassistant.core import HomeAssistant\n", True),
        ("import importlib\nimportlib.import_module('homeassistant.core')", True),
        ("__import__('homeassistant')", True),
        ("from ..runtime import CityOpsRuntime", True),
        ("from .. import const", True),
        ("from ..entity import ContainerEntity", True),
        ("from ..sources.reading import Reading", False),
        ("from .container import Container", False),
        ("import homeassistant_like_name", False),
        ("import math\nfrom collections import deque", False),
    ],
)
def test_checker_catches_violations(source: str, flagged: bool) -> None:
    """The checker itself, on a module that would live at model/probe.py."""
    assert bool(_violations(PACKAGE / "model" / "probe.py", source)) is flagged


_IMPORT_WITHOUT_HA = """
import importlib.abc, pathlib, sys, types

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "homeassistant" or name.startswith("homeassistant."):
            raise ImportError(f"pure code imported {name}")
        return None

sys.meta_path.insert(0, Refuse())
package = pathlib.Path(sys.argv[1])
# Stand-ins for the two parent packages: their __init__ is the HA layer and must not run.
for name, path in (("custom_components", package.parent), ("custom_components.city_ops", package)):
    module = types.ModuleType(name)
    module.__path__ = [str(path)]
    sys.modules[name] = module
for name in sys.argv[2:]:
    importlib.import_module(name)
print("ok", len(sys.argv) - 2)
"""


def test_pure_modules_import_without_home_assistant() -> None:
    """The same rule at run time: catches anything the source scan cannot see."""
    names = [
        ".".join(["custom_components", "city_ops", *_module_parts(path)])
        for path in _pure_modules()
    ]
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_WITHOUT_HA, str(PACKAGE), *names],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ok {len(names)}"
