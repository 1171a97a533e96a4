"""requirements/dev.txt (the test environment's lock) agrees with pyproject.toml.

The lock pins what `scripts/check` installs; pyproject.toml keeps the ranges users get.
They disagree when a dependency is added or its range moved without `scripts/lock`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "dev.txt"

Pins = dict[NormalizedName, Version]


def locked(text: str) -> Pins:
    """The pins of a lock that apply to this interpreter; raises on a pin without a hash."""
    pins: Pins = {}
    for entry in text.replace("\\\n", " ").splitlines():
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        requirement, _, options = entry.partition(" --hash=")
        if not options:
            raise ValueError(f"no hash for {requirement!r}")
        pin = Requirement(requirement.strip())
        if pin.marker is not None and not pin.marker.evaluate():
            continue
        (spec,) = pin.specifier
        if spec.operator != "==":
            raise ValueError(f"not a pin: {requirement!r}")
        pins[canonicalize_name(pin.name)] = Version(spec.version)
    return pins


def required(pyproject: dict[str, object], extra: str) -> list[Requirement]:
    """What installing ``.[extra]`` asks for directly: the core, the extra, and the
    extras it names of this project, recursively; plus the build requirements."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    name = canonicalize_name(project["name"])
    optional: dict[str, list[str]] = project["optional-dependencies"]
    build = pyproject["build-system"]
    assert isinstance(build, dict)
    wanted: list[Requirement] = [
        Requirement(r) for r in (*project["dependencies"], *build["requires"])
    ]
    pending, seen = [extra], set[str]()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for text in optional[current]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == name:
                pending.extend(requirement.extras)
            else:
                wanted.append(requirement)
    return wanted


def disagreements(requirements: Iterable[Requirement], pins: Pins) -> list[str]:
    problems = []
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems.append(f"{requirement} is not in the lock")
        elif not requirement.specifier.contains(pinned, prereleases=True):
            problems.append(f"{requirement} but the lock pins {pinned}")
    return problems


def test_lock_satisfies_pyproject() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    problems = disagreements(required(pyproject, "dev"), locked(LOCK.read_text()))
    assert not problems, "run scripts/lock (see CONTRIBUTING.md):\n" + "\n".join(problems)


def test_scripts_check_installs_the_lock_with_hashes() -> None:
    check = (ROOT / "scripts" / "check").read_text()
    assert "--require-hashes -r requirements/dev.txt" in check
    assert "--no-deps --no-build-isolation -e ." in check


def test_a_range_the_lock_misses_is_found() -> None:
    pyproject = {
        "project": {
            "name": "chatcore",
            "dependencies": ["msgspec>=0.18"],
            "optional-dependencies": {
                "dev": ["chatcore[redis]", "pytest>=8"],
                "redis": ["redis>=99"],
            },
        },
        "build-system": {"requires": ["hatchling>=1.24", "flit-core"]},
    }
    pins = locked(
        "msgspec==0.23.0 --hash=sha256:aa\nredis==8.1.0 \\\n    --hash=sha256:bb\n"
        "pytest==9.0 --hash=sha256:cc\nhatchling==1.33.0 --hash=sha256:dd\n"
        "numpy==1.0 ; python_version < '3' --hash=sha256:ee\n"
    )
    assert "numpy" not in pins
    assert disagreements(required(pyproject, "dev"), pins) == [
        "flit-core is not in the lock",
        "redis>=99 but the lock pins 8.1.0",
    ]


def test_a_pin_without_a_hash_is_refused() -> None:
    with pytest.raises(ValueError, match="no hash"):
        locked("msgspec==0.23.0\n")
