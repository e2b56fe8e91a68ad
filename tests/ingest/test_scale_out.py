"""Several ingest processes on one MQTT 5 shared subscription, one PostgreSQL: every event
stored exactly once, also when a worker is SIGKILLed mid-stream (the broker re-delivers what
it never acknowledged)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge_agent.ingest.db import Database
from edge_agent.ingest.store import EventStore
from tests.support.gateway import SimStation, trust_stations, wait_until
from tests.support.ingest import IngestProcess, ingest_config_file, ingest_settings
from tests.support.mosquitto import MosquittoBroker
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.timeout(300)
EVENTS = 600


def _workers(tmp: Path, broker: MosquittoBroker, url: str, n: int) -> list[IngestProcess]:
    base = ingest_settings(tmp, broker, url, share_group="ingest", receipts=False)
    procs = []
    for i in range(n):
        settings = replace(base, mqtt=replace(base.mqtt, client_id=f"ingest-{i}"))
        cfg = ingest_config_file(tmp / f"ingest-{i}.toml", settings)
        procs.append(IngestProcess(cfg, tmp / f"ingest-{i}.log"))
    return procs


def _events(tmp: Path, n: int) -> list[tuple[str, bytes]]:
    stations = [SimStation("site-a", f"st0{i}", tmp / "keys" / f"st0{i}") for i in (1, 2)]
    trust_stations(tmp / "trust.json", stations)
    out = []
    for i in range(n):
        st = stations[i % 2]
        _, signed = st.next_event()
        out.append((f"cloud/v1/site-a/{st.station}/event", signed))
    return out


def _publisher(broker: MosquittoBroker) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(100)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def _publish(client: mqtt.Client, items: list[tuple[str, bytes]]) -> None:
    infos = [client.publish(t, p, qos=1) for t, p in items]
    for info in infos:
        info.wait_for_publish(30)


def _trickle(client: mqtt.Client, items: list[tuple[str, bytes]]) -> None:
    for start in range(0, len(items), 20):
        _publish(client, items[start : start + 20])
        time.sleep(0.03)


def _stored_by(proc: IngestProcess) -> int:
    total = 0
    for line in proc.log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "stored" in record and "duplicates" in record:
            total += int(record["stored"])
    return total


def _count(url: str) -> int:
    with Database(url) as db:
        return EventStore(db).count()


def _wait_subscribed(procs: list[IngestProcess]) -> None:
    assert wait_until(
        lambda: all("connected to" in p.log.read_text() for p in procs if p.log.exists()), 30
    )


def test_two_workers_share_the_load_and_store_each_event_once(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.new_database()
    broker = MosquittoBroker(tmp_path / "broker")
    broker.start()
    procs = _workers(tmp_path, broker, url, 2)
    items = _events(tmp_path, EVENTS)
    client = _publisher(broker)
    try:
        for p in procs:
            p.start()
        _wait_subscribed(procs)
        _publish(client, items)
        _publish(client, items[:50])  # redeliveries, to whichever worker
        assert wait_until(lambda: _count(url) == EVENTS, 120), _count(url)
    finally:
        client.disconnect()
        client.loop_stop()
        for p in procs:
            p.stop()
        broker.kill()
    shares = [_stored_by(p) for p in procs]
    assert sum(shares) == EVENTS, shares
    assert all(s > 0 for s in shares), shares  # both took part
    with Database(url) as db:
        rows = db.query("SELECT COUNT(DISTINCT event_id), COUNT(*) FROM events")
    assert rows[0] == (EVENTS, EVENTS)


def test_sigkilled_worker_loses_nothing(tmp_path: Path, postgres_server: PostgresServer) -> None:
    url = postgres_server.new_database()
    broker = MosquittoBroker(tmp_path / "broker")
    broker.start()
    procs = _workers(tmp_path, broker, url, 2)
    items = _events(tmp_path, EVENTS)
    client = _publisher(broker)
    try:
        for p in procs:
            p.start()
        _wait_subscribed(procs)
        feeder = threading.Thread(target=_trickle, args=(client, items))
        feeder.start()
        assert wait_until(lambda: _count(url) >= 60, 60)
        procs[0].kill()  # mid-stream: its unacknowledged messages stay in its session
        assert _count(url) < EVENTS and feeder.is_alive()
        feeder.join(60)
        procs[0].start()  # same client id: the broker re-delivers the session's messages
        assert wait_until(lambda: _count(url) == EVENTS, 120), _count(url)
    finally:
        client.disconnect()
        client.loop_stop()
        for p in procs:
            p.stop()
        broker.kill()
    with Database(url) as db:
        assert db.query("SELECT COUNT(DISTINCT event_id), COUNT(*) FROM events")[0] == (
            EVENTS,
            EVENTS,
        )
