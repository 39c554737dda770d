"""The dependency floors in pyproject.toml stay above the releases with known advisories
(security audit N12), and what is installed meets them."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

#: The lowest floor each package may have, and the advisories below it.
FLOORS = {
    "starlette": "1.5.1",  # CVE-2025-62727, CVE-2025-54121, CVE-2026-48710, PYSEC-2026-248/249
    "httptools": "0.6.3",  # CVE-2024-27982 (the parser serve runs with)
    "h11": "0.16",  # CVE-2025-43859
    "pyjwt": "2.13.0",  # CVE-2024-53861, CVE-2026-32597, CVE-2026-48522..48526
    "cryptography": "48.0.1",  # GHSA-537c-gmf6-5ccf, CVE-2026-34073
    "urllib3": "2.6.3",  # CVE-2025-66418, CVE-2025-66471, CVE-2026-21441
    "requests": "2.32.4",  # CVE-2024-35195, CVE-2024-47081
    "idna": "3.7",  # CVE-2024-3651
    "protobuf": "7.35.1",  # CVE-2025-4565, CVE-2026-0994
    "grpcio": "1.85.1",  # CVE-2024-7246
}


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    parsed = (Requirement(line) for line in project["dependencies"])
    return {r.name.lower(): r for r in parsed}


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_the_floor_is_above_the_known_advisories(name: str) -> None:
    requirement = _requirements().get(name)
    assert requirement is not None, f"{name} has no floor in pyproject.toml"
    lows = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==")]
    assert lows, f"{requirement} has no lower bound"
    assert max(lows) >= Version(FLOORS[name]), f"{requirement} admits releases below {FLOORS[name]}"


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_the_installed_version_meets_the_floor(name: str) -> None:
    requirement = _requirements()[name]
    assert requirement.specifier.contains(version(name), prereleases=True), (
        f"{name} {version(name)} is installed, {requirement} is required"
    )
