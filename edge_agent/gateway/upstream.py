"""Drains the gateway outbox to the upstream broker: QoS 1, a row is deleted only on PUBACK.

Only the drain thread publishes and settles; paho's callbacks just hand mids over through a
queue (publishing under a lock that ``on_publish`` also takes deadlocks paho, and ``on_publish``
may fire before ``publish()`` returns).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from edge_agent.errors import OutboxError
from edge_agent.gateway.site import make_client
from edge_agent.uplink.outbox import Outbox
from edge_agent.uplink.settings import MqttSettings

log = logging.getLogger("edge_agent.gateway.upstream")

_MAX_OUTSTANDING = 1000
_RETRY_AFTER_S = 5.0


class UpstreamForwarder:
    """Publishes outbox rows upstream in id order and deletes them when acknowledged."""

    def __init__(self, settings: MqttSettings, outbox: Outbox) -> None:
        self._settings = settings
        self._outbox = outbox
        self._client = make_client(settings)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._acks: queue.SimpleQueue[tuple[int, bool, str]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.forwarded = 0  # rows acknowledged since start
        self._thread = threading.Thread(target=self._run, name="gateway-upstream", daemon=True)

    def start(self) -> None:
        """Connect in the background and start draining."""
        self._client.connect_async(
            self._settings.host, self._settings.port, keepalive=self._settings.keepalive_s
        )
        self._client.loop_start()
        self._thread.start()

    def stop(self) -> None:
        """Stop draining and disconnect (unacknowledged rows stay in the outbox)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._client.disconnect()
        self._client.loop_stop()

    def wake(self) -> None:
        """New rows were committed."""
        self._wake.set()

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("upstream broker refused the connection: %s", reason)
            return
        self.connected.set()
        self._wake.set()
        log.info("connected to upstream broker %s:%s", self._settings.host, self._settings.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self.connected.is_set():
            log.warning("disconnected from upstream broker: %s", reason)
        self.connected.clear()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        self._acks.put((mid, not reason.is_failure, str(reason)))
        self._wake.set()

    def _run(self) -> None:
        in_flight: dict[int, int] = {}  # paho mid -> outbox row id
        sent: set[int] = set()  # row ids handed to paho (paho re-sends them after reconnect)
        last_id = 0
        while not self._stop.is_set():
            if not self._wake.wait(timeout=1.0):
                last_id = 0  # idle: look again at rows that were backing off
            self._wake.clear()
            try:
                last_id = self._settle(in_flight, sent, last_id)
                if self.connected.is_set() and len(in_flight) < _MAX_OUTSTANDING:
                    last_id = self._publish_due(in_flight, sent, last_id)
            except OutboxError as exc:
                log.error("upstream drain: %s", exc)
                self._stop.wait(1.0)

    def _publish_due(self, in_flight: dict[int, int], sent: set[int], last_id: int) -> int:
        rows = self._outbox.fetch(last_id, _MAX_OUTSTANDING - len(in_flight))
        for row in rows:
            last_id = max(last_id, row.id)
            if row.id in sent:
                continue
            info = self._client.publish(row.topic, row.payload, qos=1)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                # Not queued by paho (queue full, bad topic): try this row again later.
                self._outbox.settle(failed=[(row.id, time.time() + _RETRY_AFTER_S, str(info.rc))])
                continue
            in_flight[info.mid] = row.id
            sent.add(row.id)
        if rows:
            self._wake.set()  # more may be due
        return last_id

    def _settle(self, in_flight: dict[int, int], sent: set[int], last_id: int) -> int:
        delivered: list[int] = []
        failed: list[tuple[int, float, str]] = []
        while True:
            try:
                mid, ok, why = self._acks.get_nowait()
            except queue.Empty:
                break
            row_id = in_flight.pop(mid, None)
            if row_id is None:
                continue
            sent.discard(row_id)
            if ok:
                delivered.append(row_id)
            else:  # refused upstream (e.g. not authorised): back off and re-read it later
                failed.append((row_id, time.time() + _RETRY_AFTER_S, why))
                last_id = min(last_id, row_id - 1)
        if delivered or failed:
            self._outbox.settle(delivered=delivered, failed=failed)
            self.forwarded += len(delivered)
        return last_id
