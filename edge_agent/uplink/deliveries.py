"""Bookkeeping of who waits for which outbox rows: add times (latency) and per-key futures."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

# bounded so a long outage with a huge backlog cannot grow memory without limit; rows beyond
# it fall back to the wall-clock commit time stored in the outbox for their latency
MAX_TRACKED_ROWS = 100_000
MAX_KEYS = 10_000


class DeliveryTracker:
    """Thread-safe: callers register rows after commit, the drainer reports PUBACKs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._added_at: dict[int, float] = {}
        self._row_key: dict[int, tuple[str, concurrent.futures.Future[float]]] = {}
        self._remaining: dict[str, int] = {}
        self._futures: OrderedDict[str, concurrent.futures.Future[float]] = OrderedDict()

    def added(
        self, ids: Iterable[int], t0: float, key: str | None = None
    ) -> concurrent.futures.Future[float] | None:
        """Remember when rows were stored; with ``key`` return a future for all of them."""
        fut: concurrent.futures.Future[float] | None = None
        with self._lock:
            if key is not None:
                fut = self._futures.get(key)
                if fut is None or fut.done():
                    fut = concurrent.futures.Future()
                    self._futures[key] = fut
                    while len(self._futures) > MAX_KEYS:
                        self._futures.popitem(last=False)
            for row_id in set(ids):
                if len(self._added_at) < MAX_TRACKED_ROWS:
                    self._added_at.setdefault(row_id, t0)
                if fut is not None and key is not None and row_id not in self._row_key:
                    self._row_key[row_id] = (key, fut)
                    self._remaining[key] = self._remaining.get(key, 0) + 1
        return fut

    def future(self, key: str) -> concurrent.futures.Future[float] | None:
        """The future of the latest ``submit`` under ``key`` (None if unknown)."""
        with self._lock:
            return self._futures.get(key)

    def delivered(self, row_id: int, created_wall: float) -> float:
        """Latency of ``row_id`` (commit -> now); completes its key's future on the last row."""
        with self._lock:
            t0 = self._added_at.pop(row_id, None)
            owner = self._row_key.pop(row_id, None)
            left = 1
            if owner is not None:
                key = owner[0]
                left = self._remaining.get(key, 1) - 1
                if left <= 0:
                    self._remaining.pop(key, None)
                else:
                    self._remaining[key] = left
        now = time.monotonic()
        latency = now - t0 if t0 is not None else max(0.0, time.time() - created_wall)
        if owner is not None and left <= 0 and not owner[1].done():
            owner[1].set_result(latency)
        return latency
