"""OutboxPublisher against a real Mosquitto: delivery, order, latency, birth/Will, failures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from edge_agent.uplink.mqtt import status_messages
from edge_agent.uplink.outbox import Outbox, OutboxMessage
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.settings import MqttSettings, UplinkSettings
from edge_agent.uplink.topics import StationTopics
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber

TOPICS = StationTopics("site-1", "bench-1")


def settings_for(broker: MosquittoBroker, **kw: object) -> MqttSettings:
    base: dict[str, object] = {
        "host": broker.host,
        "port": broker.port,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.5,
    }
    base.update(kw)
    return MqttSettings(**base)  # type: ignore[arg-type]


def payload(key: str, size: int = 1000) -> bytes:
    head = f"{key}|".encode()
    return head + b"x" * (size - len(head))


def test_events_delivered_in_order_and_outbox_emptied(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    sub = RecordingSubscriber(mosquitto_broker, TOPICS.event)
    outbox = Outbox(tmp_path / "o.sqlite3")
    pub = OutboxPublisher(outbox, settings_for(mosquitto_broker), client_id="t-order")
    keys = [f"evt-{i:04d}" for i in range(300)]
    try:
        pub.enqueue([OutboxMessage(TOPICS.event, payload(k), k) for k in keys])
        pub.start()
        assert sub.wait_for(keys, 30) == set()
        assert pub.wait_idle(10)
        assert outbox.depth == 0
        received = [m[1].split(b"|")[0].decode() for m in sub.messages]
        assert received == keys  # single connection, no loss: exact order
        assert pub.stats.published == 300
    finally:
        pub.stop()
        sub.close()
        outbox.close()


def test_submit_future_covers_companion_and_reports_latency(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    sub = RecordingSubscriber(mosquitto_broker, "battrace/v1/#")
    outbox = Outbox(tmp_path / "o.sqlite3")
    pub = OutboxPublisher(outbox, settings_for(mosquitto_broker), client_id="t-submit")
    pub.start()
    try:
        evidence = OutboxMessage(TOPICS.evidence("evt-1"), b"evt-1|\xff\xd8jpeg", "evt-1")
        fut = pub.submit(TOPICS.event, payload("evt-1"), "evt-1", companions=[evidence])
        latency = fut.result(timeout=15)
        assert 0 < latency < 15
        assert sub.wait_for(["evt-1"], 10) == set()
        end = time.monotonic() + 10  # PUBACK of both came first; delivery to us may lag
        while sub.counts["evt-1"] < 2 and time.monotonic() < end:
            time.sleep(0.01)
        topics = sorted(t for t, _, _ in sub.messages if not t.endswith("/status"))
        assert topics == [TOPICS.event, TOPICS.evidence("evt-1")]

        async def use_asyncio() -> float:
            await pub.asubmit(TOPICS.event, payload("evt-2"), "evt-2")
            return await pub.wait_delivered("evt-2", 15)

        assert asyncio.run(use_asyncio()) > 0
        with pytest.raises(KeyError):
            asyncio.run(pub.wait_delivered("never", 1))
    finally:
        pub.stop()
        sub.close()
        outbox.close()


def test_birth_and_offline_status_retained(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    status = status_messages(TOPICS.status, "t-status")
    pub = OutboxPublisher(
        outbox, settings_for(mosquitto_broker), client_id="t-status", status=status
    )
    pub.start()
    assert pub.link.wait_connected(10)
    sub = RecordingSubscriber(
        mosquitto_broker, TOPICS.status, client_id="status-1", key_of=lambda t, p: p.decode()
    )
    late: RecordingSubscriber | None = None
    stopped = False
    try:
        # the first subscriber may get the birth live (it subscribed before the publish
        # reached the broker); one that subscribes after it landed gets the retained copy
        assert sub.wait_for([status.online.decode()], 10) == set()
        late = RecordingSubscriber(
            mosquitto_broker, TOPICS.status, client_id="status-2", key_of=lambda t, p: p.decode()
        )
        assert late.wait_for([status.online.decode()], 10) == set()
        assert late.messages[0][2] is True  # retained
        stopped = True
        pub.stop()
        assert sub.wait_for([status.offline.decode()], 10) == set()
    finally:
        if not stopped:
            pub.stop()
        if late is not None:
            late.close()
        sub.close()
        outbox.close()


def test_station_uplink_from_settings(tmp_path: Path, mosquitto_broker: MosquittoBroker) -> None:
    from prometheus_client import CollectorRegistry

    from edge_agent.uplink.station_uplink import station_uplink

    registry = CollectorRegistry()
    up = station_uplink(
        site="yard-7",
        station="bench-3",
        data_dir=tmp_path,
        settings=UplinkSettings(mqtt=MqttSettings(host="127.0.0.1", port=mosquitto_broker.port)),
        registry=registry,
    )
    assert up.topics.event == "battrace/v1/yard-7/bench-3/event"
    assert up.outbox.path == tmp_path / "outbox.sqlite3"
    sub = RecordingSubscriber(
        mosquitto_broker, "battrace/v1/yard-7/#", key_of=lambda t, p: p.split(b"|")[0].decode()
    )
    up.publisher.start()
    try:
        assert up.publisher.submit(up.topics.event, b"e1|x", "e1").result(15) > 0
        assert (
            sub.wait_for(
                ["e1", '{"client_id": "edge-agent-yard-7-bench-3", "state": "online"}'], 10
            )
            == set()
        )
        assert registry.get_sample_value("edge_agent_uplink_published_total") >= 1
    finally:
        up.publisher.stop()
        sub.close()
        up.outbox.close()


def test_big_evidence_payloads_bounded_in_flight(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    sub = RecordingSubscriber(mosquitto_broker, "battrace/v1/#")
    outbox = Outbox(tmp_path / "o.db")
    settings = settings_for(mosquitto_broker, max_inflight_bytes=1_500_000)
    pub = OutboxPublisher(outbox, settings, client_id="t-big")
    peak = [0]
    pub.on_delivered(lambda *a: peak.__setitem__(0, max(peak[0], pub.window.bytes)))
    pub.start()
    try:
        futs = []
        for i in range(8):
            photo = OutboxMessage(
                TOPICS.evidence(f"big-{i}"), f"big-{i}|".encode() + b"J" * 1_000_000, f"big-{i}"
            )
            futs.append(
                pub.submit(TOPICS.event, payload(f"big-{i}"), f"big-{i}", companions=[photo])
            )
        for fut in futs:
            fut.result(30)
        assert sub.wait_for([f"big-{i}" for i in range(8)], 20) == set()
        assert peak[0] <= 2_100_000  # budget + one row, never the whole backlog
    finally:
        pub.stop()
        sub.close()
        outbox.close()


def test_puback_before_submit_returns_still_completes_future(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    """Regression: the drainer published and got the PUBACK of a fresh row while the
    submitting thread was still between commit and registration; its future never completed."""
    from edge_agent.uplink.mqtt import LinkEvent

    class LateReturnOutbox(Outbox):
        publisher: OutboxPublisher | None = None

        def add_many(self, messages):  # type: ignore[no-untyped-def]
            ids = super().add_many(messages)
            if self.publisher is not None:  # wake the drainer now, return to the caller later
                self.publisher._events.put(LinkEvent("wake"))
                assert self.publisher.wait_idle(10)  # PUBACK processed, row deleted
            return ids

    outbox = LateReturnOutbox(tmp_path / "o.db")
    pub = OutboxPublisher(outbox, settings_for(mosquitto_broker), client_id="t-race")
    pub.start()
    assert pub.link.wait_connected(10)
    outbox.publisher = pub
    try:
        fut = pub.submit(TOPICS.event, payload("race"), "race")
        assert fut.result(5) >= 0
        with pytest.raises(Exception, match="same key"):
            pub.submit(
                TOPICS.event, b"x", "a", companions=[OutboxMessage(TOPICS.evidence("b"), b"j", "b")]
            )
    finally:
        pub.stop()
        outbox.close()
