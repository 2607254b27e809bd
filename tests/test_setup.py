"""scripts/setup takes the Debian mirror from the machine's own apt sources, never a written one."""

from __future__ import annotations

from pathlib import Path
import subprocess

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Plain script checks: no Home Assistant instance needed."""


def mirror(apt_etc: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "setup"), "--print-debian-mirror"],
        env={"PATH": "/usr/bin:/bin", "CITY_OPS_APT_ETC": str(apt_etc)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_mirror_from_deb822_sources_skips_security(tmp_path: Path) -> None:
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "a.sources").write_text(
        "Types: deb\nURIs: http://security.example.test/debian-security\n"
        "Suites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example.test/debian/\nSuites: bookworm\n"
    )
    result = mirror(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://mirror.example.test/debian"


def test_mirror_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\n"
        "deb [arch=amd64 signed-by=/k.gpg] https://other.example.test/debian bookworm main\n"
    )
    result = mirror(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "https://other.example.test/debian"


def test_no_debian_mirror_is_a_failure(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://ppa.example.test/ubuntu noble main\n")
    result = mirror(tmp_path)
    assert result.returncode != 0
    assert result.stdout == ""


def test_setup_names_no_mirror_host() -> None:
    script = (ROOT / "scripts" / "setup").read_text("utf-8")
    assert "debian.org" not in script
    assert "pythonhosted" not in script
