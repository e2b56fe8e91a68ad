"""Upper bounds where a major version broke us or a verifier, and the suite runs at them."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
# package -> the major the suite is run with (the newest allowed): bump both together
BOUNDED = {"cbor2": 7, "opencv-python-headless": 6, "zxing-cpp": 4}


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = (Requirement(text) for text in project["dependencies"])
    return {r.name: r for r in reqs}


@pytest.mark.parametrize(("name", "bound"), sorted(BOUNDED.items()))
def test_bounded_and_installed_within(name: str, bound: int) -> None:
    req = _requirements()[name]
    assert f"<{bound}" in str(req.specifier), req
    installed = version(name)
    assert req.specifier.contains(installed, prereleases=True), (name, installed)
    # the suite runs on the newest allowed major, so the upper bound is the one tested
    assert int(installed.split(".")[0]) == bound - 1, (name, installed)
