"""Registry of self-test checks: built-ins register here, other packages add or replace theirs.

A check is a function ``(CheckContext) -> Outcome | Sequence[Outcome]``. It runs in its own
thread with a timeout, must not raise on a broken part (return a FAIL with a next step instead;
an unexpected exception is still caught and shown), and decides SKIP itself when its part is not
configured. Whether a FAIL blocks the run comes from ``required(config)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edge_agent.selftest.model import CheckContext, Outcome, SelftestConfig

CheckFunc = Callable[[CheckContext], "Outcome | Sequence[Outcome]"]
RequiredRule = Callable[[SelftestConfig], bool]


@dataclass(frozen=True, kw_only=True)
class CheckSpec:
    """A registered check: its name, table title, function, required rule and timeout."""

    name: str
    title: str
    func: CheckFunc
    required: RequiredRule
    timeout_s: float
    order: int


_lock = threading.Lock()
_checks: dict[str, CheckSpec] = {}


def always(_: SelftestConfig) -> bool:
    """Required rule: the check is always required."""
    return True


def never(_: SelftestConfig) -> bool:
    """Required rule: the check only informs."""
    return False


def register_check(
    name: str,
    func: CheckFunc,
    *,
    title: str,
    required: RequiredRule = always,
    timeout_s: float = 10.0,
    order: int | None = None,
    replace: bool = False,
) -> CheckSpec:
    """Add a check (or replace one by name with ``replace=True``); returns its spec."""
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"invalid check name {name!r}")
    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    with _lock:
        old = _checks.get(name)
        if old is not None and not replace:
            raise ValueError(f"check {name!r} is already registered (pass replace=True)")
        if order is None:
            order = old.order if old is not None else 1000 + len(_checks)
        spec = CheckSpec(
            name=name, title=title, func=func, required=required, timeout_s=timeout_s, order=order
        )
        _checks[name] = spec
        return spec


def unregister_check(name: str) -> None:
    """Remove a check; missing names are ignored."""
    with _lock:
        _checks.pop(name, None)


def registered_checks() -> list[CheckSpec]:
    """All checks in display order."""
    with _lock:
        return sorted(_checks.values(), key=lambda s: (s.order, s.name))


def get_check(name: str) -> CheckSpec:
    """One check by name; KeyError if unknown."""
    with _lock:
        return _checks[name]
