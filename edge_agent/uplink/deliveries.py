"""Bookkeeping of who waits for which outbox rows: add times (latency) and per-key futures.

A key's future is registered *before* its rows are committed: the drainer may fetch, publish
and see the PUBACK of a fresh row before the committing thread runs again.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

# bounded so a long outage with a huge backlog cannot grow memory without limit; rows evicted
# fall back to the wall-clock commit time stored in the outbox for their latency
MAX_TRACKED_ROWS = 100_000
MAX_KEYS = 10_000


class DeliveryTracker:
    """Thread-safe: callers register before/after commit, the drainer reports PUBACKs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._added_at: OrderedDict[int, float] = OrderedDict()
        self._remaining: dict[str, int] = {}
        self._key_t0: dict[str, float] = {}
        self._futures: OrderedDict[str, concurrent.futures.Future[float]] = OrderedDict()

    def expect(self, key: str, count: int, t0: float) -> concurrent.futures.Future[float]:
        """Register ``count`` rows about to be stored under ``key``; their common future."""
        with self._lock:
            fut = self._futures.get(key)
            if fut is None or fut.done():
                fut = concurrent.futures.Future()
                self._futures[key] = fut
                self._futures.move_to_end(key)
                while len(self._futures) > MAX_KEYS:
                    old, _ = self._futures.popitem(last=False)
                    self._remaining.pop(old, None)
                    self._key_t0.pop(old, None)
            self._remaining[key] = self._remaining.get(key, 0) + count
            self._key_t0.setdefault(key, t0)
            return fut

    def forget(self, key: str, count: int) -> None:
        """Undo ``expect`` when the rows were refused (nothing was stored)."""
        with self._lock:
            left = self._remaining.get(key, 0) - count
            if left > 0:
                self._remaining[key] = left
                return
            self._remaining.pop(key, None)
            self._key_t0.pop(key, None)
            fut = self._futures.get(key)
            if fut is not None and not fut.done():
                self._futures.pop(key)

    def added(self, ids: Iterable[int], t0: float) -> None:
        """Remember when rows were stored (for their add->PUBACK latency)."""
        with self._lock:
            for row_id in ids:
                self._added_at.setdefault(row_id, t0)
            # oldest first: entries whose PUBACK beat this call would otherwise stay forever
            while len(self._added_at) > MAX_TRACKED_ROWS:
                self._added_at.popitem(last=False)

    def future(self, key: str) -> concurrent.futures.Future[float] | None:
        """The future of the latest ``submit`` under ``key`` (None if unknown)."""
        with self._lock:
            return self._futures.get(key)

    def delivered(self, row_id: int, key: str, created_wall: float) -> float:
        """Latency of ``row_id`` (commit -> now); completes its key's future on the last row."""
        fut = None
        with self._lock:
            t0 = self._added_at.pop(row_id, None)
            if t0 is None:
                t0 = self._key_t0.get(key)
            if key in self._remaining:
                left = self._remaining[key] - 1
                if left > 0:
                    self._remaining[key] = left
                else:
                    self._remaining.pop(key)
                    self._key_t0.pop(key, None)
                    fut = self._futures.get(key)
        now = time.monotonic()
        latency = now - t0 if t0 is not None else max(0.0, time.time() - created_wall)
        if fut is not None and not fut.done():
            fut.set_result(latency)
        return latency
