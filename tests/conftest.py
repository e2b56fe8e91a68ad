"""Shared fixtures: shared test data location, leak checks. Area fixtures live in tests/support/."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.leaks import describe_threads, leaked_threads, watch_tasks

ROOT = Path(__file__).resolve().parent.parent


def _find_shared_data() -> Path:
    """$EDGE_AGENT_SHARED_DATA, else ../shared/data beside the checkout, else the workplace copy
    (a clean clone for CI may not sit beside ../shared)."""
    env = os.environ.get("EDGE_AGENT_SHARED_DATA")
    if env:
        return Path(env)
    for candidate in (ROOT.parent / "shared" / "data", Path("/work/shared/data")):
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "data"


SHARED_DATA = _find_shared_data()
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_real_part(available: bool, what: str) -> None:
    """Skip when a real part is missing on a user's machine; fail in CI."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but missing")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real test data); its absence fails in CI and skips elsewhere."""
    require_real_part(SHARED_DATA.is_dir(), f"shared test data folder {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves threads or asyncio tasks running (see tests/support/leaks.py)."""
    before = set(threading.enumerate())
    with watch_tasks() as tasks:
        yield
    threads = leaked_threads(before)
    assert not threads, f"test leaked threads: {describe_threads(threads)}"
    assert not tasks, f"test left asyncio tasks pending when asyncio.run returned: {tasks}"
