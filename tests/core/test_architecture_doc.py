"""docs/architecture.md maps every package and top-level module; the layer contracts cover them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "edge_agent"
DOC = ROOT / "docs" / "architecture.md"
# above the "nothing below commands imports config" contract: they are allowed to load it
ABOVE_COMMANDS = {"commands", "cli", "__main__", "config", "__init__"}


def _packages() -> list[str]:
    """Every package as ``edge_agent/x/`` (subpackages too), found by walking the tree."""
    return sorted(
        f"{init.parent.relative_to(ROOT).as_posix()}/"
        for init in PACKAGE.rglob("__init__.py")
        if init.parent != PACKAGE
    )


def _top_level_modules() -> list[str]:
    return sorted(f"edge_agent/{path.name}" for path in PACKAGE.glob("*.py"))


def _section(text: str, title: str) -> str:
    assert f"## {title}\n" in text, f"docs/architecture.md has no '## {title}' section"
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _mapped() -> set[str]:
    """The paths named in backticks in the first column of the package map."""
    rows = _section(DOC.read_text(encoding="utf-8"), "Package map").splitlines()
    first_cells = [row.split("|")[1] for row in rows if row.startswith("| `")]
    return {path for cell in first_cells for path in re.findall(r"`([^`]+)`", cell)}


def test_the_walk_finds_the_packages_and_modules() -> None:
    assert {"edge_agent/station/", "edge_agent/bms/can/"} <= set(_packages())
    assert {"edge_agent/cli.py", "edge_agent/model.py"} <= set(_top_level_modules())


def test_package_map_names_every_package() -> None:
    missing = [p for p in _packages() if p not in _mapped()]
    assert not missing, f"docs/architecture.md's package map misses {missing}"


def test_package_map_names_every_top_level_module() -> None:
    missing = [m for m in _top_level_modules() if m not in _mapped()]
    assert not missing, f"docs/architecture.md's package map misses {missing}"


def test_package_map_names_nothing_that_is_gone() -> None:
    gone = [
        p for p in _mapped() if p.startswith("edge_agent/") and not (ROOT / p.rstrip("/")).exists()
    ]
    assert not gone, f"docs/architecture.md maps what no longer exists: {gone}"


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def test_config_contract_covers_every_package_and_module_below_commands() -> None:
    (contract,) = [c for c in _contracts() if c["id"] == "config-at-the-top"]
    sources = contract["source_modules"]
    assert isinstance(sources, list)
    below = sorted(
        f"edge_agent.{path.stem if path.suffix else path.name}"
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").is_file())
        and (path.stem if path.suffix else path.name) not in ABOVE_COMMANDS
    )
    missing = [m for m in below if m not in sources]
    assert not missing, f"add {missing} to the config contract's source_modules in pyproject.toml"


def test_every_contract_is_described_in_the_doc() -> None:
    contracts_section = _section(DOC.read_text(encoding="utf-8"), "Layers")
    missing = [c["name"] for c in _contracts() if str(c["name"]) not in contracts_section]
    assert not missing, f"docs/architecture.md does not describe contracts {missing}"
