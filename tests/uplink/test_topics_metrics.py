"""Topic names and id validation (fuzzed), and the Prometheus metrics of a publisher."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from edge_agent.errors import ConfigError
from edge_agent.uplink.metrics import UplinkMetrics
from edge_agent.uplink.outbox import Outbox, OutboxMessage
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.settings import MqttSettings
from edge_agent.uplink.topics import ReceiptTopics, StationTopics, parse_station_topic
from tests.support.mosquitto import MosquittoBroker


def test_topic_names_follow_architecture() -> None:
    t = StationTopics("site-1", "bench_2")
    assert t.event == "battrace/v1/site-1/bench_2/event"
    assert t.status == "battrace/v1/site-1/bench_2/status"
    assert t.evidence("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b") == (
        "battrace/v1/site-1/bench_2/evidence/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    )
    assert StationTopics("s", "b", prefix="gw/up/").event == "gw/up/s/b/event"
    assert parse_station_topic(t.evidence("e1")) == ("site-1", "bench_2", "evidence")


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "x" * 65, "sp ace", "ä"])
def test_bad_ids_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        StationTopics(bad, "b")
    with pytest.raises(ConfigError):
        StationTopics("s", bad)


@pytest.mark.parametrize("bad", ["", "/", "a/+/b", "a/#", "a//b"])
def test_bad_prefix_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        StationTopics("s", "b", prefix=bad)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_parse_station_topic(topic: str) -> None:
    try:
        site, station, kind = parse_station_topic(topic)
    except (ValueError, ConfigError):
        return
    assert kind in {"event", "status", "evidence"}
    assert "/" not in site + station and "+" not in topic and "#" not in topic


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_evidence_ids(event_id: str) -> None:
    try:
        topic = StationTopics("s", "b").evidence(event_id)
    except ConfigError:
        return
    assert parse_station_topic(topic) == ("s", "b", "evidence")


def test_metrics_exported(tmp_path: Path, mosquitto_broker: MosquittoBroker) -> None:
    registry = CollectorRegistry()
    metrics = UplinkMetrics(registry)
    outbox = Outbox(tmp_path / "o.db")
    outbox.add("battrace/v1/s/b/event", b"a|1", "a")
    pub = OutboxPublisher(
        outbox,
        MqttSettings(host="127.0.0.1", port=mosquitto_broker.port),
        client_id="metrics",
        metrics=metrics,
    )
    text = generate_latest(registry).decode()
    assert "edge_agent_uplink_outbox_depth 1.0" in text
    assert "edge_agent_uplink_outbox_bytes 3.0" in text
    pub.start()
    try:
        pub.enqueue([OutboxMessage("battrace/v1/s/b/event", b"b|1", "b")])
        assert pub.wait_idle(15)
        text = generate_latest(registry).decode()
        assert "edge_agent_uplink_published_total 2.0" in text
        assert "edge_agent_uplink_publish_latency_seconds_count 2.0" in text
        assert "edge_agent_uplink_outbox_depth 0.0" in text
        # a second uplink in the same registry needs its own prefix (the gateway's upstream)
        UplinkMetrics(registry, prefix="edge_agent_gateway_upstream")
    finally:
        pub.stop()
        outbox.close()


def test_receipt_topics_of_one_station_and_of_every_station() -> None:
    own = ReceiptTopics("battrace/v1", site="site-1", station="bench_2")
    assert own.filter == "battrace/v1/site-1/bench_2/receipt"
    assert own.parse("battrace/v1/site-1/bench_2/receipt") == ("site-1", "bench_2")
    assert own.parse("battrace/v1/site-1/bench_3/receipt") is None  # another station's
    every = ReceiptTopics("cloud/v1/", suffix="receipt/upstream")
    assert every.filter == "cloud/v1/+/+/receipt/upstream"
    assert every.parse("cloud/v1/site-1/st01/receipt/upstream") == ("site-1", "st01")
    for other in (
        "cloud/v1/site-1/st01/receipt",
        "cloud/v1/site-1/receipt/upstream",
        "cloud/v1/a/b/c/receipt/upstream",
        "cloud/v1/+/st01/receipt/upstream",
        "cloud/v2/site-1/st01/receipt/upstream",
        "cloud/v1/receipt/upstream",
    ):
        assert every.parse(other) is None, other
    with pytest.raises(ConfigError):
        ReceiptTopics("a/+", suffix="receipt")
    with pytest.raises(ConfigError):
        ReceiptTopics(suffix="receipt/#")
    with pytest.raises(ConfigError):
        ReceiptTopics(site="a/b")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_receipt_topic_parse(topic: str) -> None:
    parsed = ReceiptTopics("cloud/v1", suffix="receipt/upstream").parse(topic)
    if parsed is not None:
        site, station = parsed
        assert topic == f"cloud/v1/{site}/{station}/receipt/upstream"
        assert "/" not in site + station and "+" not in topic and "#" not in topic
