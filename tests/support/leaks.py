"""Leak checks behind the autouse fixture in tests/conftest.py: threads and asyncio tasks.

Threads: every production thread is a daemon thread named ``edge-agent-...`` (paho's network
threads are ``paho-mqtt-client-...``), so a thread is leaked when it is still alive after the
test and either is not a daemon or carries one of those prefixes. Threads of other libraries
(asyncio's executor, pymodbus, python-can) are left to their owners.

Tasks: ``asyncio.run`` cancels whatever is still pending when the main coroutine returns, which
hides a task nobody stopped. While a watch is open, ``asyncio.Runner.run`` (behind every
``asyncio.run``, in any thread) records the tasks still pending at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Iterator
from contextvars import Context
from typing import Any

THREAD_PREFIXES = ("edge-agent-", "paho-mqtt-client-")


def is_watched(thread: threading.Thread) -> bool:
    """A thread whose leak the check reports: not a daemon, or named like ours."""
    return not thread.daemon or thread.name.startswith(THREAD_PREFIXES)


def leaked_threads(
    before: set[threading.Thread], *, grace_s: float = 2.0
) -> list[threading.Thread]:
    """Watched threads started since ``before`` that are still alive after ``grace_s``."""
    end = time.monotonic() + grace_s
    while True:
        leaked = [
            t for t in threading.enumerate() if t not in before and t.is_alive() and is_watched(t)
        ]
        if not leaked or time.monotonic() > end:
            return leaked
        time.sleep(0.05)


def describe_threads(threads: list[threading.Thread]) -> str:
    """Each thread's name and where it is now (its innermost frames), to find what holds it."""
    frames = sys._current_frames()
    parts = []
    for t in threads:
        frame = frames.get(t.ident or -1)
        stack = "".join(traceback.format_stack(frame, limit=8)) if frame else "  (no frame)\n"
        parts.append(f"{t.name}:\n{stack}")
    return "\n".join(parts)


def describe_task(task: asyncio.Task[Any]) -> str:
    """The task's name and the coroutine it runs."""
    coro = task.get_coro()
    return f"{task.get_name()} ({getattr(coro, '__qualname__', coro)!s})"


_lock = threading.Lock()
_collectors: list[list[str]] = []  # innermost watch last; a leak goes to that one only
_original_run: Callable[..., Any] = asyncio.Runner.run


def _run_and_record(
    self: asyncio.Runner, coro: Coroutine[Any, Any, Any], *, context: Context | None = None
) -> Any:
    result = _original_run(self, coro, context=context)
    pending = [t for t in asyncio.all_tasks(self.get_loop()) if not t.done()]
    if pending:
        where = threading.current_thread().name
        with _lock:
            if _collectors:
                _collectors[-1].extend(f"{describe_task(t)} in {where}" for t in pending)
    return result


@contextlib.contextmanager
def watch_tasks() -> Iterator[list[str]]:
    """Collect tasks left pending by any ``asyncio.run`` while the block runs."""
    leaks: list[str] = []
    with _lock:
        if not _collectors:
            asyncio.Runner.run = _run_and_record  # type: ignore[method-assign]
        _collectors.append(leaks)
    try:
        yield leaks
    finally:
        with _lock:
            del _collectors[next(i for i, c in enumerate(_collectors) if c is leaks)]
            if not _collectors:
                asyncio.Runner.run = _original_run  # type: ignore[method-assign]
