"""Ingest throughput into PostgreSQL vs plain executemany/COPY of the same rows; the gain of a
second worker; one pack found among many stored.

Everything runs on this machine: a Mosquitto broker, a PostgreSQL server started by the
benchmark (initdb + pg_ctl in a temporary directory, fsync off: the database's disk is not what
we compare), and ingest workers as child processes (``edge-agent ingest``) on one MQTT 5 shared
subscription. Per run the workers connect and subscribe, are frozen (SIGSTOP), N signed events
are queued on the broker, and the clock runs from SIGCONT until all N are stored.

    python bench/bench_ingest.py            # N=6000 events, 3 runs, lookup among 1,000,000
    python bench/bench_ingest.py --smoke    # N=300, 1 run, lookup among 10,000 (CI)
    python bench/bench_ingest.py --lookup-only [--stored N]   # the lookup table alone

The lookup times ``records find CODE`` with its correction links (``corrects`` and
``corrected_by``, the command a user runs) against ``records.find`` alone (the rows, the
baseline) and against the links found by a LIKE scan of body_json (before issue 17).

It also prints where a worker's time goes per event, measured in this process on the same
events (CPU time, median of 5 passes): the signature alone (OpenSSL), the rest of the COSE
checks, the v1 model, the row, the store and the receipts; the rest of the worker's wall time
per event is MQTT receive and ack (paho) and the hand-over between its threads.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cbor2  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402

from edge_agent.event_codec import decode_body  # noqa: E402
from edge_agent.ingest.acks import Answer, publish_receipts  # noqa: E402
from edge_agent.ingest.check import check_event, event_row  # noqa: E402
from edge_agent.ingest.db import Database  # noqa: E402
from edge_agent.ingest.records import Query, find, find_with_links  # noqa: E402
from edge_agent.ingest.store import COLUMNS, EventRow, EventStore  # noqa: E402
from edge_agent.signing.algorithms import ALGORITHMS, verify_signature  # noqa: E402
from edge_agent.signing.cose import sig_structure, verify_sign1  # noqa: E402
from edge_agent.signing.keys import init_keys, load_signer  # noqa: E402
from edge_agent.signing.trust import TrustStore, iso_utc  # noqa: E402
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
) -> tuple[float, float]:
    """Events stored per second by ``workers`` processes, from SIGCONT to the last row, and
    the CPU seconds the workers used meanwhile (all their threads)."""
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
        cpu0 = sum(_cpu_s(p) for p in procs)
        t0 = time.perf_counter()
        for p in procs:
            assert p.proc is not None
            os.kill(p.proc.pid, signal.SIGCONT)
        end = time.monotonic() + 300
        while count(url) < len(items):
            if time.monotonic() > end:
                raise RuntimeError(f"only {count(url)} of {len(items)} stored")
            time.sleep(0.02)
        rate = len(items) / (time.perf_counter() - t0)
        return rate, sum(_cpu_s(p) for p in procs) - cpu0
    finally:
        for p in procs:
            if p.proc is not None and p.proc.poll() is None:
                os.kill(p.proc.pid, signal.SIGCONT)
            p.stop()


def _cpu_s(worker: IngestProcess) -> float:
    """User + system CPU seconds of a worker process so far (/proc/PID/stat)."""
    assert worker.proc is not None
    fields = Path(f"/proc/{worker.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def baseline_run(
    pg: PostgresServer,
    rows: list[EventRow],
    *,
    copy: bool,
    verify: Callable[[], object] | None = None,
) -> float:
    """Plain INSERT executemany (or COPY) of the same rows into the same schema, one transaction.

    With ``verify``, the clock also covers it (run first): the baseline of a store that checks
    every event's signature and nothing else.
    """
    url = pg.new_database()
    with Database(url) as db:
        db.migrate()
    values = [r.values() for r in rows]
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        if verify is not None:
            verify()
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


@dataclass(frozen=True)
class Lookup:
    """Milliseconds (median, worst) of finding one pack among ``stored`` events."""

    stored: int
    find: tuple[float, float]  # records.find by pack code: the rows alone
    links: tuple[float, float]  # records find CODE: rows + corrects/corrected_by (the command)
    like: tuple[float, float]  # the same with the links by a LIKE scan of body_json (before)


def _timed(probe: Callable[[str], object], codes: list[str]) -> tuple[float, float]:
    """Median and worst ms of ``probe(code)`` over ``codes``."""
    times = []
    for code in codes:
        t0 = time.perf_counter()
        probe(code)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times)


def _like_links(store: EventStore, code: str) -> list[tuple[str, str | None]]:
    """records find CODE as it was before issue 17: each row's corrections by a LIKE scan."""
    links = []
    for row in find(store, Query(pack_code=code)):
        found = store.select("body_json LIKE ?", [f'%"corrects": "{row.event_id}"%'])
        links.append((row.event_id, max((c.event_id for c in found), default=None)))
    return links


def lookup(pg: PostgresServer, template: EventRow, stored: int, probes: int) -> Lookup:
    """``records find CODE`` among ``stored`` events (COPY-loaded); one event in 100 is a
    correction of the one before it (same pack code), the probed packs among them."""
    url = pg.new_database()
    with Database(url) as db:
        db.migrate()
    rng = random.Random(7)
    alphabet = string.ascii_uppercase + string.digits
    body = json.loads(template.body_json)
    codes: list[str] = []
    step = max(100, stored // probes // 100 * 100)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as cp:
            code = original = ""
            for i in range(stored):
                event_id = f"{i:08x}-0000-7000-8000-000000000000"
                corrects = original if i % 100 == 1 else None
                if corrects is None:
                    code = "".join(rng.choices(alphabet, k=24))
                if i % step == 0:
                    codes.append(code)
                text = template.body_json
                if corrects:  # the body names the original, as a signed correction's does
                    text = json.dumps({**body, "event_id": event_id, "corrects": corrects})
                row = replace(
                    template,
                    event_id=event_id,
                    pack_code=code,
                    vin=None,
                    corrects=corrects,
                    body_json=text,
                )
                cp.write_row(row.values())
                original = event_id
        conn.commit()
        conn.execute("ANALYZE events")
    codes = codes[:probes]
    with Database(url) as db:
        store = EventStore(db, migrate=False)
        for code in codes[:3]:  # every probed pack is an original and its correction
            lines = find_with_links(store, Query(pack_code=code))
            assert [x["pack_code"] for x in lines] == [code, code], lines
            assert lines[0]["corrected_by"] == lines[1]["event_id"]
            assert lines[1]["corrects"] == lines[0]["event_id"]
            assert [link for _, link in _like_links(store, code)] == [lines[1]["event_id"], None]
        return Lookup(
            stored=stored,
            find=_timed(lambda code: find(store, Query(pack_code=code)), codes),
            links=_timed(lambda code: find_with_links(store, Query(pack_code=code)), codes),
            like=_timed(lambda code: _like_links(store, code), codes[:5]),
        )


def split(
    work: Path, pg: PostgresServer, items: list[tuple[str, bytes]], rows: list[EventRow]
) -> list[tuple[str, float]]:
    """Per-event CPU microseconds of each step of the worker, on the same events.

    Each step is timed directly (CPU time of one pass over the N events); the steps take
    turns for 5 rounds, so a load spike from another process touches one round of each, and
    the median round counts.
    """
    trust = TrustStore.load(work / "trust.json")
    now = datetime.now(UTC)
    received = iso_utc(now)
    payloads = [p for _, p in items]
    envelopes = [cbor2.loads(p).value for p in payloads]  # [protected, {}, body, signature]
    signed = []
    for protected, _, body, signature in envelopes:
        headers = cbor2.loads(protected)
        key = trust.resolve(headers[4], at=now).public_key
        signed.append((ALGORITHMS[headers[1]], key, sig_structure(protected, b"", body), signature))
    decoded = [decode_body(e[2]) for e in envelopes]
    signer = load_signer(work / "ingest-key")
    answers = [Answer(r.site, r.station, r.event_id, "accepted", "stored") for r in rows]
    batches = [slice(start, start + 500) for start in range(0, len(rows), 500)]

    def signatures() -> None:
        for spec, key, data, signature in signed:
            assert verify_signature(spec, key, data, signature)

    def store() -> None:
        url = pg.new_database()
        with Database(url) as db:
            db.migrate()
            store = EventStore(db, migrate=False)
            t0 = time.process_time()
            for batch in batches:
                store.store(rows[batch])
            clock.append(time.process_time() - t0)  # the migration does not count

    def receipts() -> None:
        for batch in batches:
            publish_receipts(lambda *_, **__: None, signer, prefix=PREFIX, answers=answers[batch])

    def each(step: Callable[[Any], object], values: Iterable[Any]) -> None:
        # results are not kept: a worker holds one batch, and 6000 kept results would make
        # the garbage collector's passes over them part of the step's time
        collections.deque(map(step, values), maxlen=0)

    steps: dict[str, Callable[[], object]] = {
        "signature alone (OpenSSL verify)": signatures,
        "COSE checks + signature (verify_sign1)": lambda: each(
            lambda p: verify_sign1(p, trust, at=now), payloads
        ),
        "body: CBOR decode + v1 model": lambda: each(decode_body, (e[2] for e in envelopes)),
        "row: columns and body JSON": lambda: each(
            lambda d: event_row(d[0][0], d[1], received, d[0][1]),
            zip(decoded, payloads, strict=True),
        ),
        "all of check_event (the three above + topic)": lambda: each(
            lambda i: check_event(i[0], i[1], trust, prefix=PREFIX, max_bytes=65536, now=now),
            items,
        ),
        "store (client CPU; COPY, batches of 500)": store,
        "receipts (one per station and batch of 500)": receipts,
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(5):
        for name, step in steps.items():
            clock: list[float] = []
            t0 = time.process_time()
            step()
            spent = clock[0] if clock else time.process_time() - t0
            times[name].append(spent / len(items) * 1e6)
    return [(name, statistics.median(us)) for name, us in times.items()]


def print_lookup(found: Lookup) -> None:
    """The lookup table: the rows alone (baseline), with links, with links the old way."""
    print(f"one pack among {found.stored} stored, 1 in 100 events a correction (PostgreSQL)")
    print(f"{'what':<58}{'median ms':>10}{'worst ms':>10}{'ratio':>8}")
    base = found.find[0]
    for name, (median, worst) in (
        (f"records find CODE among {found.stored} stored (rows)", found.find),
        ("  with correction links (records find, the command)", found.links),
        ("  links by LIKE scan of body_json (before, 5 probes)", found.like),
    ):
        print(f"{name:<58}{median:>10.2f}{worst:>10.2f}{median / base:>8.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="short CI mode")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--stored", type=int, default=None, help="rows for the lookup")
    parser.add_argument("--lookup-only", action="store_true", help="only the lookup table")
    args = parser.parse_args()
    n = args.events or (300 if args.smoke else 6000)
    runs = args.runs or (1 if args.smoke else 3)
    stored = args.stored or (10_000 if args.smoke else 1_000_000)
    if pg_bin() is None:
        print("PostgreSQL server binaries (initdb, pg_ctl) not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        if args.lookup_only:
            return lookup_only(work, stored)
        init_keys(work / "ingest-key", "ed25519")
        items, rows = make_events(work, n)
        broker = MosquittoBroker(work / "broker", extra_conf="max_inflight_messages 100\n")
        broker.start()
        pg = PostgresServer(pg_bin())  # type: ignore[arg-type]
        pg.start()
        try:
            one_runs = [ingest_run(work, broker, pg, items, 1, r) for r in range(runs)]
            two = [ingest_run(work, broker, pg, items, 2, r)[0] for r in range(runs)]
            many = [baseline_run(pg, rows, copy=False) for _ in range(runs)]
            copy = [baseline_run(pg, rows, copy=True) for _ in range(runs)]
            trust = TrustStore.load(work / "trust.json")
            now = datetime.now(UTC)
            checked = [
                baseline_run(
                    pg,
                    rows,
                    copy=False,
                    verify=lambda: [verify_sign1(p, trust, at=now) for _, p in items],
                )
                for _ in range(runs)
            ]
            found = lookup(pg, rows[0], stored, 50)
            steps = split(work, pg, items, rows)
        finally:
            pg.stop()
            broker.kill()
    one = [rate for rate, _ in one_runs]
    m1, m2 = statistics.median(one), statistics.median(two)
    worker_cpu_us = statistics.median(cpu for _, cpu in one_runs) / n * 1e6
    mb, mc = statistics.median(many), statistics.median(copy)
    mv = statistics.median(checked)
    print(
        f"ingest into PostgreSQL, {n} signed events, median of {runs} runs "
        "(verify + v1 model + store + ack + signed receipt)"
    )
    print(f"{'what':<44}{'events/s':>12}   per-run")
    print(f"{'executemany INSERT (baseline)':<44}{mb:>12.0f}   {[round(x) for x in many]}")
    print(f"{'COPY (baseline)':<44}{mc:>12.0f}   {[round(x) for x in copy]}")
    print(
        f"{'verify_sign1 + executemany (baseline)':<44}{mv:>12.0f}   {[round(x) for x in checked]}"
    )
    print(f"{'ingest, 1 worker':<44}{m1:>12.0f}   {[round(x) for x in one]}")
    print(f"{'ingest, 2 workers (shared subscription)':<44}{m2:>12.0f}   {[round(x) for x in two]}")
    print(f"ratio ingest/executemany: {m1 / mb:.2f}   ingest/COPY: {m1 / mc:.2f}")
    print(f"ratio ingest/(verify_sign1 + executemany): {m1 / mv:.2f}")
    print(f"second worker gain: {m2 / m1:.2f}x")
    print_lookup(found)
    print()
    wall_us, row_us = 1e6 / m1, 1e6 / mb
    us = dict(steps)
    signature_us = us.pop("signature alone (OpenSSL verify)")
    check_us = us.pop("all of check_event (the three above + topic)")
    print(f"{'one worker, per event':<56}{'us':>8}{'of CPU':>8}")
    print(f"{'worker wall time (1 / events/s)':<56}{wall_us:>8.1f}")
    print(f"{'worker CPU time, all its threads (/proc)':<56}{worker_cpu_us:>8.1f}{1:>8.0%}")
    for name, value in us.items():
        print(f"  {name:<54}{value:>8.1f}{value / worker_cpu_us:>8.0%}")
        if name.startswith("COSE"):
            share = signature_us / worker_cpu_us
            print(
                f"    {'of which the signature alone (OpenSSL)':<52}{signature_us:>8.1f}{share:>8.0%}"
            )
    rest = worker_cpu_us - sum(us.values())
    print(
        f"  {'rest: MQTT receive + ack (paho), threads, logging':<54}{rest:>8.1f}{rest / worker_cpu_us:>8.0%}"
    )
    print(
        f"{'waiting (database, broker, other processes on the CPUs)':<56}{wall_us - worker_cpu_us:>8.1f}"
    )
    print(
        f"(steps timed in this process on the same events; check_event as a whole {check_us:.1f} us)"
    )
    print(
        f"signature alone = {signature_us / row_us:.1f}x the baseline's insert of a row "
        f"({row_us:.1f} us): with every other step free, ingest/executemany <= "
        f"{row_us / signature_us:.2f}"
    )
    return 0


def lookup_only(work: Path, stored: int) -> int:
    """``--lookup-only``: the lookup table alone (no broker, no workers)."""
    _, rows = make_events(work, 1)
    pg = PostgresServer(pg_bin())  # type: ignore[arg-type]
    pg.start()
    try:
        print_lookup(lookup(pg, rows[0], stored, 50))
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
