"""MqttLink as a subscriber (the gateway's side): PUBACK after the handler, redelivery on
handler failure, persistent session across our own downtime."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from edge_agent.uplink.mqtt import MqttLink
from edge_agent.uplink.outbox import Outbox, OutboxMessage
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.settings import MqttSettings
from tests.support.mosquitto import MosquittoBroker

TOPIC = "battrace/v1/site-1/bench-1/event"


class Recorder:
    def __init__(self, fail_first: set[bytes] = frozenset()) -> None:  # type: ignore[assignment]
        self.seen: list[bytes] = []
        self.fail_first = set(fail_first)
        self.cond = threading.Condition()

    def __call__(self, topic: str, payload: bytes, retain: bool) -> None:
        with self.cond:
            self.seen.append(payload)
            self.cond.notify_all()
        if payload in self.fail_first:
            self.fail_first.discard(payload)
            raise OSError("disk full while storing")

    def wait(self, n: int, timeout: float = 20) -> bool:
        end = time.monotonic() + timeout
        with self.cond:
            while len(self.seen) < n:
                if not self.cond.wait(max(0.0, end - time.monotonic())):
                    return False
        return True


def _settings(broker: MosquittoBroker) -> MqttSettings:
    return MqttSettings(
        host=broker.host, port=broker.port, reconnect_min_s=0.05, reconnect_max_s=0.3
    )


def _publish(tmp_path: Path, broker: MosquittoBroker, payloads: list[bytes]) -> None:
    outbox = Outbox(tmp_path / f"pub-{time.monotonic_ns()}.db")
    pub = OutboxPublisher(outbox, _settings(broker), client_id=f"pub-{time.monotonic_ns()}")
    pub.start()
    try:
        pub.enqueue([OutboxMessage(TOPIC, p, p.decode()) for p in payloads])
        assert pub.wait_idle(20)
    finally:
        pub.stop()
        outbox.close()


def test_handler_failure_gets_the_message_again(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    rec = Recorder(fail_first={b"m2"})
    link = MqttLink(
        _settings(mosquitto_broker),
        client_id="gw-sub",
        sink=lambda e: None,
        subscriptions=["battrace/v1/+/+/event"],
        on_message=rec,
        session_expiry_s=300,
    )
    link.start()
    try:
        assert link.wait_subscribed(10)  # nothing is queued for us before the SUBACK
        _publish(tmp_path, mosquitto_broker, [b"m1", b"m2", b"m3"])
        assert rec.wait(4), rec.seen
        assert rec.seen.count(b"m2") == 2  # refused once (no PUBACK), delivered again
        assert {b"m1", b"m3"} <= set(rec.seen)
    finally:
        link.stop()


def test_persistent_session_queues_while_subscriber_is_down(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    rec = Recorder()
    make = lambda: MqttLink(  # noqa: E731
        _settings(mosquitto_broker),
        client_id="gw-persist",
        sink=lambda e: None,
        subscriptions=["battrace/v1/#"],
        on_message=rec,
        session_expiry_s=300,
    )
    link = make()
    link.start()
    assert link.wait_subscribed(10)
    link.stop()
    _publish(tmp_path, mosquitto_broker, [b"q1", b"q2"])  # we are offline now
    link = make()
    link.start()
    try:
        assert rec.wait(2), rec.seen
        assert sorted(rec.seen) == [b"q1", b"q2"]
    finally:
        link.stop()
