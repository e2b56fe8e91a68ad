"""Every package states its public surface with ``__all__``, and every name in it exists."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "edge_agent"
INITS = sorted(PACKAGE.rglob("__init__.py"))


def _defined_names(tree: ast.Module) -> set[str]:
    """Names bound at module level: assignments, imports, functions and classes."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
    return names


def _declared_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        target = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        elif isinstance(node, ast.AnnAssign):
            target = node.target
        if isinstance(target, ast.Name) and target.id == "__all__":
            assert node.value is not None
            value = ast.literal_eval(node.value)
            assert isinstance(value, list), "__all__ must be a list of names"
            return value
    return None


def test_every_package_is_checked() -> None:
    assert len(INITS) >= 14  # edge_agent and its subpackages


@pytest.mark.parametrize("init", INITS, ids=lambda p: str(p.parent.relative_to(PACKAGE.parent)))
def test_package_declares_all_and_each_name_exists(init: Path) -> None:
    tree = ast.parse(init.read_text(encoding="utf-8"))
    declared = _declared_all(tree)
    assert declared is not None, f"{init}: no __all__"
    assert ast.get_docstring(tree), f"{init}: no docstring saying what the package is"
    defined = _defined_names(tree)
    folder = init.parent
    missing = [
        name
        for name in declared
        if name not in defined
        and not (folder / f"{name}.py").is_file()
        and not (folder / name / "__init__.py").is_file()
    ]
    assert not missing, f"{init}: __all__ names nothing by {missing}"
    assert len(set(declared)) == len(declared), f"{init}: __all__ repeats a name"
