"""Ingest throughput into PostgreSQL vs plain executemany/COPY of the same rows; the gain of a
second worker; one pack found among many stored.

Everything runs on this machine: a Mosquitto broker, a PostgreSQL server started by the
benchmark (initdb + pg_ctl in a temporary directory, fsync off: the database's disk is not what
we compare), and ingest workers as child processes (``edge-agent ingest``) on one MQTT 5 shared
subscription. Per run the workers connect and subscribe, are frozen (SIGSTOP), N signed events
are queued on the broker, and the clock runs from SIGCONT until all N are stored.

    python bench/bench_ingest.py            # N=6000 events, 3 runs, lookup among 1,000,000
    python bench/bench_ingest.py --smoke    # N=300, 1 run, lookup among 10,000 (CI)
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import string
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402

from edge_agent.ingest.check import check_event  # noqa: E402
from edge_agent.ingest.db import Database  # noqa: E402
from edge_agent.ingest.records import Query, find  # noqa: E402
from edge_agent.ingest.store import COLUMNS, EventRow, EventStore  # noqa: E402
from edge_agent.signing.keys import init_keys  # noqa: E402
from edge_agent.signing.trust import TrustStore  # noqa: E402
from tests.support.gateway import SimStation, trust_stations  # noqa: E402
from tests.support.ingest import (  # noqa: E402
    IngestProcess,
    ingest_config_file,
    ingest_settings,
)
from tests.support.mosquitto import MosquittoBroker  # noqa: E402
from tests.support.postgres import PostgresServer, pg_bin  # noqa: E402

PREFIX = "cloud/v1"


def make_events(work: Path, n: int) -> tuple[list[tuple[str, bytes]], list[EventRow]]:
    """N signed events from 4 stations, as (topic, COSE bytes) and as checked store rows."""
    stations = [SimStation("site-a", f"st{i:02d}", work / "keys" / f"st{i}") for i in range(4)]
    trust_stations(work / "trust.json", stations)
    trust = TrustStore.load(work / "trust.json")
    items, rows = [], []
    now = datetime.now(UTC)
    for i in range(n):
        st = stations[i % len(stations)]
        _, signed = st.next_event()
        topic = f"{PREFIX}/site-a/{st.station}/event"
        items.append((topic, signed))
        row = check_event(topic, signed, trust, prefix=PREFIX, max_bytes=65536, now=now)
        assert isinstance(row, EventRow)
        rows.append(row)
    return items, rows


def publish(port: int, items: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(200)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(t, p, qos=1) for t, p in items]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT COUNT(*) FROM events").fetchone()
        return int(row[0]) if row else 0


def ingest_run(
    work: Path,
    broker: MosquittoBroker,
    pg: PostgresServer,
    items: list[tuple[str, bytes]],
    workers: int,
    run: int,
) -> float:
    """Events stored per second by ``workers`` processes, from SIGCONT to the last row."""
    url = pg.new_database()
    with Database(url) as db:
        db.migrate()
    base = ingest_settings(
        work,
        broker,
        url,
        share_group=f"bench{run}w{workers}",
        receipt_key_dir=str(work / "ingest-key"),
    )
    procs = []
    for i in range(workers):
        settings = replace(base, mqtt=replace(base.mqtt, client_id=f"bench-{run}-{workers}-{i}"))
        cfg = ingest_config_file(work / f"w{run}-{workers}-{i}.toml", settings)
        procs.append(IngestProcess(cfg, work / f"w{run}-{workers}-{i}.log"))
    try:
        for p in procs:
            p.start()
        end = time.monotonic() + 60
        while not all(p.log.exists() and "connected to" in p.log.read_text() for p in procs):
            if time.monotonic() > end:
                raise RuntimeError("ingest workers did not connect")
            time.sleep(0.05)
        time.sleep(0.3)  # subscriptions granted
        for p in procs:
            assert p.proc is not None
            os.kill(p.proc.pid, signal.SIGSTOP)
        publish(broker.port, items)
        t0 = time.perf_counter()
        for p in procs:
            assert p.proc is not None
            os.kill(p.proc.pid, signal.SIGCONT)
        end = time.monotonic() + 300
        while count(url) < len(items):
            if time.monotonic() > end:
                raise RuntimeError(f"only {count(url)} of {len(items)} stored")
            time.sleep(0.02)
        return len(items) / (time.perf_counter() - t0)
    finally:
        for p in procs:
            if p.proc is not None and p.proc.poll() is None:
                os.kill(p.proc.pid, signal.SIGCONT)
            p.stop()


def baseline_run(pg: PostgresServer, rows: list[EventRow], *, copy: bool) -> float:
    """Plain INSERT executemany (or COPY) of the same rows into the same schema, one transaction."""
    url = pg.new_database()
    with Database(url) as db:
        db.migrate()
    values = [r.values() for r in rows]
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            if copy:
                with cur.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as cp:
                    for v in values:
                        cp.write_row(v)
            else:
                marks = ", ".join(["%s"] * len(COLUMNS))
                cur.executemany(
                    f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({marks})", values
                )
        conn.commit()
        return len(rows) / (time.perf_counter() - t0)


def lookup(pg: PostgresServer, template: EventRow, stored: int, probes: int) -> tuple[float, float]:
    """Median and worst ms of ``records find CODE`` among ``stored`` events (COPY-loaded)."""
    url = pg.new_database()
    with Database(url) as db:
        db.migrate()
    rng = random.Random(7)
    alphabet = string.ascii_uppercase + string.digits
    codes = []
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as cp:
            for i in range(stored):
                code = "".join(rng.choices(alphabet, k=24))
                if i % max(1, stored // probes) == 0:
                    codes.append(code)
                cp.write_row(
                    replace(
                        template,
                        event_id=f"{i:08x}-0000-7000-8000-000000000000",
                        pack_code=code,
                        vin=None,
                    ).values()
                )
        conn.commit()
        conn.execute("ANALYZE events")
    times = []
    with Database(url) as db:
        store = EventStore(db, migrate=False)
        for code in codes[:probes]:
            t0 = time.perf_counter()
            found = find(store, Query(pack_code=code))
            times.append((time.perf_counter() - t0) * 1000)
            assert len(found) == 1 and found[0].pack_code == code
    return statistics.median(times), max(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="short CI mode")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--stored", type=int, default=None, help="rows for the lookup")
    args = parser.parse_args()
    n = args.events or (300 if args.smoke else 6000)
    runs = args.runs or (1 if args.smoke else 3)
    stored = args.stored or (10_000 if args.smoke else 1_000_000)
    if pg_bin() is None:
        print("PostgreSQL server binaries (initdb, pg_ctl) not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        init_keys(work / "ingest-key", "ed25519")
        items, rows = make_events(work, n)
        broker = MosquittoBroker(work / "broker", extra_conf="max_inflight_messages 100\n")
        broker.start()
        pg = PostgresServer(pg_bin())  # type: ignore[arg-type]
        pg.start()
        try:
            one = [ingest_run(work, broker, pg, items, 1, r) for r in range(runs)]
            two = [ingest_run(work, broker, pg, items, 2, r) for r in range(runs)]
            many = [baseline_run(pg, rows, copy=False) for _ in range(runs)]
            copy = [baseline_run(pg, rows, copy=True) for _ in range(runs)]
            median_ms, worst_ms = lookup(pg, rows[0], stored, 50)
        finally:
            pg.stop()
            broker.kill()
    m1, m2 = statistics.median(one), statistics.median(two)
    mb, mc = statistics.median(many), statistics.median(copy)
    print(
        f"ingest into PostgreSQL, {n} signed events, median of {runs} runs "
        "(verify + v1 model + store + ack + signed receipt)"
    )
    print(f"{'what':<44}{'events/s':>12}   per-run")
    print(f"{'executemany INSERT (baseline)':<44}{mb:>12.0f}   {[round(x) for x in many]}")
    print(f"{'COPY (baseline)':<44}{mc:>12.0f}   {[round(x) for x in copy]}")
    print(f"{'ingest, 1 worker':<44}{m1:>12.0f}   {[round(x) for x in one]}")
    print(f"{'ingest, 2 workers (shared subscription)':<44}{m2:>12.0f}   {[round(x) for x in two]}")
    print(f"ratio ingest/executemany: {m1 / mb:.2f}   ingest/COPY: {m1 / mc:.2f}")
    print(f"second worker gain: {m2 / m1:.2f}x")
    print(
        f"records find CODE among {stored} stored: median {median_ms:.2f} ms, worst {worst_ms:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
