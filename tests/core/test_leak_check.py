"""The leak check of tests/conftest.py catches leaked named threads and pending asyncio tasks."""

from __future__ import annotations

import ast
import asyncio
import threading
from pathlib import Path

from tests.support.leaks import THREAD_PREFIXES, leaked_threads, watch_tasks

PACKAGE = Path(__file__).resolve().parents[2] / "edge_agent"


def _started(name: str, *, daemon: bool) -> tuple[threading.Thread, threading.Event]:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, args=(30,), name=name, daemon=daemon)
    thread.start()
    return thread, release


def test_a_leaked_daemon_thread_with_our_prefix_is_caught() -> None:
    before = set(threading.enumerate())
    thread, release = _started("edge-agent-deliberate-leak", daemon=True)
    try:
        assert leaked_threads(before, grace_s=0.1) == [thread]
    finally:
        release.set()
        thread.join(5)
    assert leaked_threads(before, grace_s=0.1) == []


def test_a_leaked_paho_network_thread_is_caught() -> None:
    before = set(threading.enumerate())
    thread, release = _started("paho-mqtt-client-forgotten", daemon=True)
    try:
        assert leaked_threads(before, grace_s=0.1) == [thread]
    finally:
        release.set()
        thread.join(5)


def test_a_leaked_non_daemon_thread_is_caught_whatever_its_name() -> None:
    before = set(threading.enumerate())
    thread, release = _started("Thread-anonymous", daemon=False)
    try:
        assert leaked_threads(before, grace_s=0.1) == [thread]
    finally:
        release.set()
        thread.join(5)


def test_other_libraries_daemon_threads_are_left_to_their_owners() -> None:
    before = set(threading.enumerate())
    thread, release = _started("asyncio_0", daemon=True)
    try:
        assert leaked_threads(before, grace_s=0.1) == []
    finally:
        release.set()
        thread.join(5)


def test_a_thread_that_ends_within_the_grace_period_is_not_a_leak() -> None:
    before = set(threading.enumerate())
    thread, release = _started("edge-agent-slow-to-stop", daemon=True)
    threading.Timer(0.2, release.set).start()
    assert leaked_threads(before, grace_s=3.0) == []
    thread.join(5)


def test_a_task_left_pending_by_asyncio_run_is_caught() -> None:
    async def forget_a_task() -> None:
        asyncio.create_task(asyncio.sleep(30), name="forgotten-poller")  # noqa: RUF006
        await asyncio.sleep(0)

    async def clean_up() -> None:
        task = asyncio.create_task(asyncio.sleep(30), name="stopped-poller")
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    with watch_tasks() as leaks:
        asyncio.run(clean_up())
        assert leaks == []
        asyncio.run(forget_a_task())
    assert len(leaks) == 1 and leaks[0].startswith("forgotten-poller (sleep)"), leaks
    assert "MainThread" in leaks[0]


def test_tasks_leaked_in_another_thread_are_caught_too() -> None:
    async def forget_a_task() -> None:
        asyncio.create_task(asyncio.sleep(30), name="forgotten-in-thread")  # noqa: RUF006
        await asyncio.sleep(0)

    with watch_tasks() as leaks:
        worker = threading.Thread(target=asyncio.run, args=(forget_a_task(),), name="edge-agent-w")
        worker.start()
        worker.join(5)
    assert [leak.split(" ")[0] for leak in leaks] == ["forgotten-in-thread"]
    assert leaks[0].endswith("in edge-agent-w")


def test_watch_restores_asyncio_run_when_the_last_watch_closes() -> None:
    # the autouse fixture holds a watch during this test; an inner one takes the leaks itself
    patched = asyncio.Runner.run
    with watch_tasks():
        assert asyncio.Runner.run is patched
    assert asyncio.Runner.run is patched


def _thread_calls(tree: ast.AST) -> list[ast.Call]:
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in {"Thread", "ThreadPoolExecutor"}:
                calls.append(node)
    return calls


def _name_prefix(call: ast.Call) -> str | None:
    for kw in call.keywords:
        if kw.arg in {"name", "thread_name_prefix"}:
            value = kw.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
            if isinstance(value, ast.JoinedStr) and value.values:
                first = value.values[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    return first.value
    return None


def test_every_production_thread_is_named_with_our_prefix() -> None:
    unnamed = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for call in _thread_calls(ast.parse(path.read_text(encoding="utf-8"))):
            prefix = _name_prefix(call)
            if prefix is None or not prefix.startswith(THREAD_PREFIXES[0]):
                unnamed.append(f"{path.relative_to(PACKAGE.parent)}:{call.lineno}")
    assert not unnamed, f"threads without an {THREAD_PREFIXES[0]!r} name: {unnamed}"
