"""requirements.lock (the exact versions installed everywhere) agrees with pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import dev

ROOT = Path(__file__).resolve().parent.parent


def _lock() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for number, raw in enumerate((ROOT / "requirements.lock").read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"requirements.lock line {number} is not an exact pin: {raw!r}"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [Requirement(spec) for spec in [*project["dependencies"], *extras.get("dev", [])]]


@pytest.mark.parametrize("requirement", _declared(), ids=str)
def test_every_declared_dependency_is_pinned_to_a_version_pyproject_admits(
    requirement: Requirement,
) -> None:
    if requirement.marker is not None and not requirement.marker.evaluate():
        pytest.skip("not needed on this Python")
    pins = _lock()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"{requirement.name} is missing: run `python3 dev.py lock`"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"requirements.lock pins {name}=={pins[name]}, outside {requirement}: "
        "run `python3 dev.py lock`"
    )


def test_the_lock_pins_each_package_once() -> None:
    lines = [
        line for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line
    ]
    assert len(lines) == len(_lock())


def test_changing_the_lock_reinstalls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setattr(dev, "LOCK", tmp_path / "requirements.lock")
    without_lock = dev.install_digest()
    (tmp_path / "requirements.lock").write_text("aiogram==3.28.2\n")
    with_lock = dev.install_digest()
    (tmp_path / "requirements.lock").write_text("aiogram==3.28.1\n")
    assert len({without_lock, with_lock, dev.install_digest()}) == 3
