"""Drainer: streams outbox rows to the broker, at most ``max_inflight`` outstanding.

The parts: ``SendWindow`` and ``RowFeed`` (send_window.py: what is in flight, what goes
next), ``Settler`` (settler.py: outbox updates committed on their own thread), ``Backoff`` and
``AckExpiry`` (retry.py: when a row goes again), ``DeliveryTracker`` (deliveries.py: who waits
for which rows). This class wires them to the link and runs the drainer thread.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from edge_agent.errors import OutboxError, PublishError
from edge_agent.uplink.deliveries import DeliveryTracker
from edge_agent.uplink.metrics import UplinkMetrics
from edge_agent.uplink.mqtt import LinkEvent, MessageHandler, MqttLink, StatusMessages
from edge_agent.uplink.outbox import Outbox, OutboxMessage
from edge_agent.uplink.retry import AckExpiry, Backoff
from edge_agent.uplink.send_window import Flight, RowFeed, SendWindow
from edge_agent.uplink.settings import MqttSettings
from edge_agent.uplink.settler import Settler

log = logging.getLogger("edge_agent.uplink.publisher")

DeliveredCallback = Callable[[int, str, float], None]


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
        config_key: str = "uplink.mqtt",
        subscriptions: Sequence[str] = (),
        on_message: MessageHandler | None = None,
    ) -> None:
        self.outbox = outbox
        self.stats = PublisherStats()
        self.metrics = metrics
        if metrics is not None:
            metrics.bind_outbox(outbox)
        self._events: queue.SimpleQueue[LinkEvent] = queue.SimpleQueue()
        self.link = MqttLink(
            settings,
            client_id=client_id,
            sink=self._events.put,
            status=status,
            config_key=config_key,
            subscriptions=subscriptions,
            on_message=on_message,
        )
        # drainer-thread state; keyword arguments override the config (tests use short times)
        self.window = SendWindow(settings.max_inflight, settings.max_inflight_bytes)
        self._feed = RowFeed(outbox, rescan_s)
        self._backoff = Backoff(
            settings.retry_min_s if retry_min_s is None else retry_min_s,
            settings.retry_max_s if retry_max_s is None else retry_max_s,
        )
        self._expiry = AckExpiry(settings.ack_timeout_s if ack_timeout_s is None else ack_timeout_s)
        self._idle = threading.Condition()
        self._settler = Settler(
            outbox,
            batch=ack_batch,
            flush_s=ack_flush_s,
            on_done=lambda: self._events.put(LinkEvent("settled")),
            on_committed=self._notify_idle,
        )
        self._deliveries = DeliveryTracker()  # shared with callers; never locked around paho
        self._callbacks: list[DeliveredCallback] = []
        self._stop = threading.Event()
        self._closing = threading.Event()  # stop(): send nothing new, collect the PUBACKs
        self._landed = threading.Event()  # closing and nothing in flight (or link down)
        self._thread: threading.Thread | None = None

    # --- public API ----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect and start draining in background threads."""
        if self._thread is not None:
            return
        self.link.start()
        self._settler.start()
        self._thread = threading.Thread(
            target=self._run, name="edge-agent-outbox-drainer", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0, *, drain: bool = False) -> None:
        """Stop draining (optionally wait for an empty outbox first), disconnect.

        Graceful: no new row is sent, the PUBACKs of the rows in flight are awaited (up to
        ``timeout`` while connected) and every PUBACK received is committed before the
        connection closes, so a restart sends nothing twice that the broker had acknowledged.
        """
        if drain:
            self.wait_idle(timeout)
        self._closing.set()
        self._events.put(LinkEvent("wake"))
        if self._thread is not None and not self._landed.wait(timeout):
            log.warning("%d publishes without PUBACK at stop: sent again next start", self.inflight)
        self._stop.set()
        self._events.put(LinkEvent("wake"))
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._settler.stop(timeout)
        self.link.stop(timeout)

    def rescan(self) -> None:
        """Look at the outbox again from the first row (rows became due: a retry, re-signing)."""
        self._events.put(LinkEvent("rescan"))

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
        return len(self.window)

    def _is_idle(self) -> bool:
        return (
            self.outbox.depth == 0
            and not self.window.flights
            and not self._settler.acked
            and self._settler.settling is None
        )

    def _notify_idle(self) -> None:
        with self._idle:
            self._idle.notify_all()

    # --- drainer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:  # keep draining whatever went wrong in one step
                log.exception("outbox drainer step failed")
                self._stop.wait(0.5)
        # PUBACKs that arrived after the last step are committed too
        while True:
            try:
                self._handle(self._events.get_nowait())
            except queue.Empty:
                break
            except Exception:
                log.exception("outbox drainer event failed at stop")
        self._settler.finish()

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
        self._settler.flush()
        now = time.monotonic()
        if now >= self._feed.next_rescan:
            self._feed.rewind()
        if self._closing.is_set():
            if not self.window.flights or not self.link.connected:
                self._landed.set()
        elif self.link.connected:
            self._expire_flights(now)
            self._fill_window()
        if self.metrics is not None:
            self.metrics.inflight.set(len(self.window))
            self.metrics.connected.set(1 if self.link.connected else 0)

    def _wait_s(self) -> float:
        due = self._settler.due_in()
        if due is not None:
            return due
        return max(0.0, min(1.0, self._feed.next_rescan - time.monotonic()))

    def _handle(self, event: LinkEvent) -> None:
        if event.kind == "ack":
            self._on_ack(event)
        elif event.kind == "connected":
            self._expiry.connected_since = time.monotonic()
        elif event.kind == "disconnected":
            if self.metrics is not None:
                self.metrics.reconnects.inc()
        elif event.kind == "rescan":
            self._feed.rewind()
        elif event.kind == "settled":
            self._settler.settled()
        elif event.kind == "reset":  # a new paho client: its predecessor's mids are gone
            self.window.clear()
            self._feed.rewind()

    def _on_ack(self, event: LinkEvent) -> None:
        flight = self.window.pop(event.mid)
        if flight is None:
            return  # birth/status message, or a flight we already gave up on
        if event.failure:
            self.stats.failures += 1
            if self.metrics is not None:
                self.metrics.failures.inc()
            delay = self._backoff.delay(flight.attempts)
            self._settler.refused(flight.row_id, time.time() + delay, event.failure)
            self._feed.rescan_by(time.monotonic() + delay)
            log.warning(
                "broker refused row %d (%s): %s; retry in %.1f s",
                flight.row_id,
                flight.key,
                event.failure,
                delay,
            )
            return
        self._settler.delivered(flight.row_id)
        if self.outbox.receipts:  # no receipt by then: the row is due again
            self._feed.rescan_by(time.monotonic() + self.outbox.receipt_timeout_s + 0.01)
        self._delivered(flight)

    def _delivered(self, flight: Flight) -> None:
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

    def _expire_flights(self, now: float) -> None:
        stale = self._expiry.expire(self.window, now)
        for flight in stale:
            log.warning(
                "no PUBACK for row %d within %.0f s; sending it again",
                flight.row_id,
                self._expiry.timeout_s,
            )
        if stale:
            self._feed.rewind()

    def _fill_window(self) -> None:
        with self.link.burst():
            self._fill_window_burst()

    def _skip(self, row_id: int) -> bool:
        return row_id in self.window.rows or row_id in self._settler.acked_rows

    def _fill_window_burst(self) -> None:
        window = self.window
        while window.is_open() and not self._stop.is_set():
            row = self._feed.next_row(window.max_count, window.max_bytes, self._skip)
            if row is None:
                return
            try:
                mid = self.link.publish(row.topic, row.payload)
            except PublishError as exc:
                log.warning("row %d not sent: %s", row.id, exc)
                lo = self._backoff.min_s
                self._settler.refused(row.id, time.time() + lo, str(exc))
                self._feed.rescan_by(time.monotonic() + lo)
                self.stats.failures += 1
                return
            window.add(
                mid,
                Flight(
                    row.id,
                    row.key,
                    row.attempts + 1,
                    time.monotonic(),
                    row.created,
                    len(row.payload),
                ),
            )
            self._settler.sent(row.id)
