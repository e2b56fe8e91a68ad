"""Drainer: streams outbox rows to the broker, at most ``max_inflight`` outstanding.

All outbox bookkeeping runs on one drainer thread. paho callbacks only put events on a queue,
so an ``on_publish`` that fires before ``publish()`` returns (paho#482) is handled after the
mid has been recorded, and no application lock is ever held around ``publish``
(paho#226). Rows are deleted only after PUBACK, in batched transactions; a crash between
PUBACK and that commit re-sends the row (receivers de-duplicate by key).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from edge_agent.errors import OutboxError, PublishError
from edge_agent.uplink.deliveries import DeliveryTracker
from edge_agent.uplink.metrics import UplinkMetrics
from edge_agent.uplink.mqtt import LinkEvent, MqttLink, StatusMessages
from edge_agent.uplink.outbox import Outbox, OutboxMessage, OutboxRow
from edge_agent.uplink.settings import MqttSettings

log = logging.getLogger("edge_agent.uplink.publisher")

DeliveredCallback = Callable[[int, str, float], None]


@dataclass(slots=True)
class _Flight:
    row_id: int
    key: str
    attempts: int
    sent: float  # monotonic
    created: float  # wall clock of the outbox commit
    size: int


@dataclass(slots=True)
class PublisherStats:
    """Plain counters (also exported through UplinkMetrics)."""

    published: int = 0
    failures: int = 0
    last_latency_s: float = 0.0


class OutboxPublisher:
    """Keeps the broker fed from the outbox; start(), submit()/enqueue(), stop()."""

    def __init__(
        self,
        outbox: Outbox,
        settings: MqttSettings,
        *,
        client_id: str,
        status: StatusMessages | None = None,
        metrics: UplinkMetrics | None = None,
        ack_batch: int = 64,
        ack_flush_s: float = 0.0,
        ack_timeout_s: float | None = None,
        retry_min_s: float | None = None,
        retry_max_s: float | None = None,
        rescan_s: float = 5.0,
    ) -> None:
        self.outbox = outbox
        self.window = settings.max_inflight
        # evidence photos are megabytes: bound bytes in flight too (one row always may go)
        self.window_bytes = settings.max_inflight_bytes
        self._inflight_bytes = 0
        self.stats = PublisherStats()
        self.metrics = metrics
        if metrics is not None:
            metrics.bind_outbox(outbox)
        self._events: queue.SimpleQueue[LinkEvent] = queue.SimpleQueue()
        self.link = MqttLink(settings, client_id=client_id, sink=self._events.put, status=status)
        self._ack_batch = ack_batch
        self._ack_flush_s = ack_flush_s
        # keyword arguments override the config (tests use short times)
        self._ack_timeout_s = settings.ack_timeout_s if ack_timeout_s is None else ack_timeout_s
        self._retry = (
            settings.retry_min_s if retry_min_s is None else retry_min_s,
            settings.retry_max_s if retry_max_s is None else retry_max_s,
        )
        self._rescan_s = rescan_s
        # drainer-thread state
        self._inflight: dict[int, _Flight] = {}
        self._inflight_rows: set[int] = set()
        self._acked: list[int] = []  # PUBACKed, delete not yet committed
        self._acked_rows: set[int] = set()
        self._attempted: list[int] = []
        self._failed: list[tuple[int, float, str]] = []
        self._first_unflushed = 0.0
        # deletes are committed on a settler thread so publishing goes on during the fsync;
        # acked rows stay in _acked_rows (never re-sent) until their delete is committed
        self._settle_queue: queue.SimpleQueue[tuple[list[int], list[int], list[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._settling: tuple[list[int], list[int], list[Any]] | None = None
        self._settle_error: OutboxError | None = None
        self._settle_done = threading.Event()
        self._settle_done.set()
        self._settle_retry_at = 0.0
        self._settler: threading.Thread | None = None
        self._prefetch: deque[OutboxRow] = deque()
        self._cursor = 0
        self._next_rescan = 0.0
        self._connected_since = 0.0
        self._next_expiry_check = 0.0
        self._deliveries = DeliveryTracker()  # shared with callers; never locked around paho
        self._idle = threading.Condition()
        self._callbacks: list[DeliveredCallback] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- public API ----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect and start draining in background threads."""
        if self._thread is not None:
            return
        self.link.start()
        self._settler = threading.Thread(
            target=self._settle_loop, name="edge-agent-outbox-settler", daemon=True
        )
        self._settler.start()
        self._thread = threading.Thread(
            target=self._run, name="edge-agent-outbox-drainer", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0, *, drain: bool = False) -> None:
        """Stop draining (optionally wait for an empty outbox first), disconnect."""
        if drain:
            self.wait_idle(timeout)
        self._stop.set()
        self._events.put(LinkEvent("wake"))
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._settler is not None:
            self._settle_queue.put(None)
            self._settler.join(timeout)
            self._settler = None
        self.link.stop(timeout)

    def on_delivered(self, callback: DeliveredCallback) -> None:
        """Call ``callback(row_id, key, latency_s)`` (drainer thread) after each PUBACK."""
        self._callbacks.append(callback)

    def enqueue(self, messages: Sequence[OutboxMessage]) -> list[int]:
        """Commit messages to the outbox (OutboxFullError refuses them) and wake the drainer."""
        t0 = time.monotonic()
        ids = self.outbox.add_many(messages)
        self._deliveries.added(ids, t0)
        self._events.put(LinkEvent("wake"))
        return ids

    def submit(
        self, topic: str, payload: bytes, key: str, *, companions: Iterable[OutboxMessage] = ()
    ) -> concurrent.futures.Future[float]:
        """Commit one message (+ companions, same key; submit a key once); the future gives
        the add->PUBACK latency once all of them are acknowledged."""
        messages = [OutboxMessage(topic, payload, key), *companions]
        if any(m.key != key for m in messages):
            raise OutboxError(f"companions of {key!r} must carry the same key")
        t0 = time.monotonic()
        # register first: the PUBACK can arrive before add_many() returns to us
        fut = self._deliveries.expect(key, len(messages), t0)
        try:
            self.outbox.add_many(messages)
        except BaseException:
            self._deliveries.forget(key, len(messages))
            raise
        self._events.put(LinkEvent("wake"))
        return fut

    async def asubmit(
        self, topic: str, payload: bytes, key: str, *, companions: Iterable[OutboxMessage] = ()
    ) -> concurrent.futures.Future[float]:
        """``submit`` from asyncio without blocking the loop on the fsync."""
        return await asyncio.to_thread(
            self.submit, topic, payload, key, companions=list(companions)
        )

    async def wait_delivered(self, key: str, timeout: float) -> float:
        """Await PUBACK of everything submitted under ``key``; latency in s, TimeoutError."""
        fut = self._deliveries.future(key)
        if fut is None:
            raise KeyError(f"nothing submitted under key {key!r}")
        return await asyncio.wait_for(asyncio.wrap_future(fut), timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Block until the outbox is empty and nothing is in flight; False on timeout."""
        end = time.monotonic() + timeout
        with self._idle:
            while not self._is_idle():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.5))
        return True

    @property
    def inflight(self) -> int:
        """Messages published and awaiting PUBACK."""
        return len(self._inflight)

    def _is_idle(self) -> bool:
        return (
            self.outbox.depth == 0
            and not self._inflight
            and not self._acked
            and self._settling is None
        )

    # --- drainer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:  # keep draining whatever went wrong in one step
                log.exception("outbox drainer step failed")
                self._stop.wait(0.5)
        # let a running settle finish, then commit what is left on this thread
        if self._settle_done.wait(10.0):
            self._settled()
            pending = (self._acked, self._attempted, self._failed)
            if any(pending):
                try:
                    self.outbox.settle(
                        delivered=pending[0], attempted=pending[1], failed=pending[2]
                    )
                except OutboxError as exc:
                    log.error("final outbox flush failed: %s", exc)

    def _step(self) -> None:
        try:
            event: LinkEvent | None = self._events.get(timeout=self._wait_s())
        except queue.Empty:
            event = None
        handled = 0
        while event is not None and handled < 10_000:
            self._handle(event)
            handled += 1
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                event = None
        self._flush()
        now = time.monotonic()
        if now >= self._next_rescan:
            self._rewind()
        if self.link.connected:
            self._expire_flights(now)
            self._fill_window()
        if self.metrics is not None:
            self.metrics.inflight.set(len(self._inflight))
            self.metrics.connected.set(1 if self.link.connected else 0)

    def _wait_s(self) -> float:
        if self._settling is None and (self._acked or self._attempted or self._failed):
            start = max(self._first_unflushed + self._ack_flush_s, self._settle_retry_at)
            return max(0.0, start - time.monotonic())
        return max(0.0, min(1.0, self._next_rescan - time.monotonic()))

    def _handle(self, event: LinkEvent) -> None:
        if event.kind == "ack":
            self._on_ack(event)
        elif event.kind == "connected":
            self._connected_since = time.monotonic()
        elif event.kind == "disconnected":
            if self.metrics is not None:
                self.metrics.reconnects.inc()
        elif event.kind == "settled":
            self._settled()
        elif event.kind == "reset":  # a new paho client: its predecessor's mids are gone
            self._inflight.clear()
            self._inflight_bytes = 0
            self._inflight_rows.clear()
            self._rewind()

    def _on_ack(self, event: LinkEvent) -> None:
        flight = self._inflight.pop(event.mid, None)
        if flight is None:
            return  # birth/status message, or a flight we already gave up on
        self._inflight_bytes -= flight.size
        self._inflight_rows.discard(flight.row_id)
        self._mark_unflushed()
        if event.failure:
            self.stats.failures += 1
            if self.metrics is not None:
                self.metrics.failures.inc()
            lo, hi = self._retry
            delay = min(hi, lo * 2 ** min(flight.attempts, 20))
            self._failed.append((flight.row_id, time.time() + delay, event.failure))
            self._next_rescan = min(self._next_rescan, time.monotonic() + delay)
            log.warning(
                "broker refused row %d (%s): %s; retry in %.1f s",
                flight.row_id,
                flight.key,
                event.failure,
                delay,
            )
            return
        self._acked.append(flight.row_id)
        self._acked_rows.add(flight.row_id)
        self._delivered(flight)

    def _delivered(self, flight: _Flight) -> None:
        latency = self._deliveries.delivered(flight.row_id, flight.key, flight.created)
        self.stats.published += 1
        self.stats.last_latency_s = latency
        if self.metrics is not None:
            self.metrics.published.inc()
            self.metrics.latency.observe(latency)
        for callback in self._callbacks:
            try:
                callback(flight.row_id, flight.key, latency)
            except Exception:
                log.exception("delivered callback failed")

    def _mark_unflushed(self) -> None:
        if not (self._acked or self._attempted or self._failed):
            self._first_unflushed = time.monotonic()

    def _flush(self) -> None:
        if self._settling is not None:
            return  # one settle at a time; acks keep accumulating into the next group
        if not (self._acked or self._attempted or self._failed):
            return
        if time.monotonic() < self._settle_retry_at:
            return
        if time.monotonic() - self._first_unflushed < self._ack_flush_s and (
            len(self._acked) < self._ack_batch
        ):
            return
        self._settling = (self._acked, self._attempted, self._failed)
        self._acked, self._attempted, self._failed = [], [], []
        self._settle_done.clear()
        self._settle_queue.put(self._settling)

    def _settle_loop(self) -> None:
        while True:
            work = self._settle_queue.get()
            if work is None:
                return
            try:
                self.outbox.settle(delivered=work[0], attempted=work[1], failed=work[2])
                self._settle_error = None
            except OutboxError as exc:  # e.g. disk full: keep the rows, try again later
                self._settle_error = exc
            except Exception as exc:
                log.exception("outbox settle failed")
                self._settle_error = OutboxError(str(exc))
            self._settle_done.set()
            self._events.put(LinkEvent("settled"))

    def _settled(self) -> None:
        work, self._settling = self._settling, None
        if work is None:
            return
        if self._settle_error is not None:
            log.warning("outbox update failed, will retry: %s", self._settle_error)
            self._mark_unflushed()
            self._acked = work[0] + self._acked
            self._attempted = work[1] + self._attempted
            self._failed = work[2] + self._failed
            self._settle_retry_at = time.monotonic() + 0.5  # do not spin on a full disk
            return
        self._acked_rows.difference_update(work[0])
        with self._idle:
            self._idle.notify_all()

    def _rewind(self) -> None:
        # look again from the start: rows behind the cursor that became due (back-off over,
        # `outbox retry`, given-up flights); rows still in flight are skipped in _fill_window
        self._cursor = 0
        self._prefetch.clear()
        self._next_rescan = time.monotonic() + self._rescan_s

    def _expire_flights(self, now: float) -> None:
        # Scanning every flight on every step cost O(window) per PUBACK; a flight is stale only
        # after ack_timeout_s, so looking a few times per timeout is just as good.
        if now < self._next_expiry_check:
            return
        limit = self._ack_timeout_s
        self._next_expiry_check = now + min(1.0, limit / 4)
        stale = [
            mid
            for mid, f in self._inflight.items()
            if now - max(f.sent, self._connected_since) > limit
        ]
        for mid in stale:
            flight = self._inflight.pop(mid)
            self._inflight_bytes -= flight.size
            self._inflight_rows.discard(flight.row_id)
            log.warning(
                "no PUBACK for row %d within %.0f s; sending it again", flight.row_id, limit
            )
        if stale:
            self._rewind()

    def _window_open(self) -> bool:
        if len(self._inflight) >= self.window:
            return False
        return not self._inflight or self._inflight_bytes < self.window_bytes

    def _fill_window(self) -> None:
        with self.link.burst():
            self._fill_window_burst()

    def _fill_window_burst(self) -> None:
        while self._window_open() and not self._stop.is_set():
            if not self._prefetch:
                rows = self.outbox.fetch(self._cursor, self.window, max_bytes=self.window_bytes)
                if not rows:
                    return
                self._cursor = rows[-1].id
                self._prefetch.extend(
                    r
                    for r in rows
                    if r.id not in self._inflight_rows and r.id not in self._acked_rows
                )
                continue
            row = self._prefetch.popleft()
            try:
                mid = self.link.publish(row.topic, row.payload)
            except PublishError as exc:
                log.warning("row %d not sent: %s", row.id, exc)
                self._mark_unflushed()
                lo, _ = self._retry
                self._failed.append((row.id, time.time() + lo, str(exc)))
                self._next_rescan = min(self._next_rescan, time.monotonic() + lo)
                self.stats.failures += 1
                return
            self._mark_unflushed()
            size = len(row.payload)
            self._inflight[mid] = _Flight(
                row.id, row.key, row.attempts + 1, time.monotonic(), row.created, size
            )
            self._inflight_bytes += size
            self._inflight_rows.add(row.id)
            self._attempted.append(row.id)
