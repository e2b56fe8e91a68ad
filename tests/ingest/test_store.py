"""Migrations, idempotent append-only storage and records queries on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from edge_agent.errors import IngestError, RecordsQueryError
from edge_agent.ingest import migrations
from edge_agent.ingest.db import Database
from edge_agent.ingest.evidence import EvidenceStore
from edge_agent.ingest.records import (
    LEDGER_COLUMNS,
    Query,
    corrected_by,
    export,
    export_rows,
    find,
    find_with_links,
    superseded,
    verify_all,
)
from edge_agent.ingest.store import COLUMNS, EventRow, EventStore, RefusalRow
from tests.ingest.helpers import correction_chain, links_from_bodies, rows, station_and_trust


def _tables(db: Database) -> set[str]:
    if db.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    return {r[0] for r in db.query(sql)}


# the version that added each events column not in version 1
_ADDED_IN = {"vin": 3, "corrects": 4}


def _insert_at(db: Database, version: int, batch: list[EventRow]) -> None:
    """Insert ``batch`` as a program at schema ``version`` did: only the columns it had."""
    columns = [c for c in COLUMNS if _ADDED_IN.get(c, 1) <= version]
    sql = f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    with db.transaction() as tx:
        tx.executemany(sql, [[getattr(row, c) for c in columns] for row in batch])


def test_migrations_from_empty_and_from_every_earlier_version(db_url: str, tmp_path: Path) -> None:
    station, trust = station_and_trust(tmp_path)
    with Database(db_url) as db:
        assert db.version() == 0
        for version in range(1, migrations.LATEST + 1):
            assert db.migrate(version) == version
            if version == 1:  # data written by the first schema survives every later step
                first = rows(station, trust, 1)[0]
                _insert_at(db, 1, [first])
        assert db.migrate() == migrations.LATEST  # nothing left to do
        assert {"events", "evidence", "evidence_blobs", "refusals", "schema_version"} <= _tables(db)
        store = EventStore(db)
        found = find(store, Query(event_id=first.event_id))
        assert [r.cose for r in found] == [first.cose]
        assert found[0].vin is None  # column added by version 3
        assert found[0].corrects is None  # column added by version 4


@pytest.mark.parametrize("start", range(1, migrations.LATEST))
def test_corrections_stored_at_an_earlier_version_are_found_after_migrating(
    db_url: str, tmp_path: Path, start: int
) -> None:
    station, trust = station_and_trust(tmp_path)
    chain = correction_chain(station, trust)
    a, b, c, d, decoy = (r.event_id for r in chain)
    with Database(db_url) as db:
        db.migrate(start)
        _insert_at(db, start, chain)
        assert db.migrate() == migrations.LATEST
        store = EventStore(db)
        stored = find(store, Query(pack_code=chain[0].pack_code))
        assert [(r.event_id, r.corrects) for r in stored] == [
            (r.event_id, r.corrects) for r in chain
        ]
        assert corrected_by(store, [a, b, c, d, decoy]) == links_from_bodies(chain)
        assert links_from_bodies(chain) == {a: d, b: c}
        assert superseded(store) == {a, b}
        lines = find_with_links(store, Query(pack_code=chain[0].pack_code))
        assert [(x["corrects"], x["corrected_by"]) for x in lines] == [
            (None, d),
            (a, c),
            (b, None),
            (a, None),
            (None, None),
        ]
        assert verify_all(store, trust, EvidenceStore(tmp_path / "evidence")).ok
        # the backfill lifted the append-only rule for itself only
        for sql in ("UPDATE events SET corrects = NULL", "DELETE FROM events"):
            with pytest.raises(IngestError, match="never changed"):
                db.query(sql)


@pytest.mark.parametrize("start", range(migrations.LATEST + 1))
def test_each_start_version_reaches_the_latest(db_url: str, start: int) -> None:
    with Database(db_url) as db:
        db.migrate(start)
        assert db.version() == start
    with Database(db_url) as db:  # a new program run finishes the job
        assert EventStore(db).db.version() == migrations.LATEST


def test_newer_schema_than_the_program_is_refused(tmp_path: Path) -> None:
    with Database(f"sqlite:///{tmp_path / 'x.sqlite3'}") as db:
        db.migrate()
        db.query("INSERT INTO schema_version (version) VALUES (?)", [migrations.LATEST + 5])
        with pytest.raises(IngestError, match="newer"):
            db.migrate()


def test_events_stored_once_and_never_changed(db_url: str, tmp_path: Path) -> None:
    station, trust = station_and_trust(tmp_path)
    batch = rows(station, trust, 5, photo=True)
    with Database(db_url) as db:
        store = EventStore(db)
        assert set(store.store(batch).values()) == {"stored"}
        # redelivery and a batch holding the same event twice: stored once
        again = store.store([batch[0], batch[1], batch[1]])
        assert again == {batch[0].event_id: "duplicate", batch[1].event_id: "duplicate"}
        forged = replace(batch[2], cose=batch[2].cose + b"x")
        assert store.store([forged]) == {batch[2].event_id: "conflict"}
        assert store.count() == 5
        for sql in (
            "UPDATE events SET pack_code = 'X'",
            "DELETE FROM events",
            "DELETE FROM evidence",
        ):
            with pytest.raises(IngestError, match="never changed"):
                db.query(sql)
        assert store.count() == 5
        stored = find(store, Query(event_id=batch[2].event_id))
        assert stored[0].cose == batch[2].cose
        assert len(stored[0].evidence) == 1


def test_find_by_each_field(db_url: str, tmp_path: Path) -> None:
    station, trust = station_and_trust(tmp_path)
    batch = rows(station, trust, 3)
    with Database(db_url) as db:
        store = EventStore(db)
        store.store(batch)
        code = batch[0].pack_code
        assert code
        assert len(find(store, Query(pack_code=code))) == 3
        assert len(find(store, Query(pack_code=code), limit=2)) == 2
        assert len(find(store, Query(station="st01", site="site-a"))) == 3
        assert len(find(store, Query(disposition="reuse_candidate"))) == 3
        assert find(store, Query(disposition="expert_review")) == []
        assert len(find(store, Query(since="2026-11-27", until="2026-11-27"))) == 3
        assert find(store, Query(since="2026-11-28")) == []
        assert len(find(store, Query(until="2026-11-27T10:00:01Z"))) == 3
        assert find(store, Query(vin="LFV2A21K6D4000001")) == []


INJECTIONS = [
    "' OR '1'='1",
    "x'; DROP TABLE events; --",
    "1 OR 1=1",
    '" OR ""="',
    "%' --",
    "?",
    "03HPB0DA0001B1D8A0000001' UNION SELECT * FROM refusals --",
    "\x00",
    "A" * 5000,
]


@pytest.mark.parametrize(
    "field", ["pack_code", "vin", "event_id", "site", "station", "disposition", "since", "until"]
)
def test_injection_in_every_query_field_is_refused(db_url: str, tmp_path: Path, field: str) -> None:
    station, trust = station_and_trust(tmp_path)
    with Database(db_url) as db:
        store = EventStore(db)
        store.store(rows(station, trust, 2))
        for attempt in INJECTIONS:
            with pytest.raises(RecordsQueryError, match=field):
                find(store, Query(**{field: attempt}))
            with pytest.raises(RecordsQueryError):
                list(export_rows(store, Query(**{field: attempt})))
        assert store.count() == 2
        assert "events" in _tables(db)


def test_bad_limit_and_format_are_refused(tmp_path: Path) -> None:
    with Database(f"sqlite:///{tmp_path / 'x.sqlite3'}") as db:
        store = EventStore(db)
        for limit in (0, -1, 10**9):
            with pytest.raises(RecordsQueryError, match="limit"):
                find(store, Query(), limit=limit)
        with pytest.raises(RecordsQueryError, match="format"):
            export([], io.StringIO(), fmt="xlsx; rm -rf /")


def test_export_csv_and_json_ledger(db_url: str, tmp_path: Path) -> None:
    station, trust = station_and_trust(tmp_path)
    batch = rows(station, trust, 4, photo=True)
    with Database(db_url) as db:
        store = EventStore(db)
        store.store(batch)
        out = io.StringIO()
        assert (
            export(
                export_rows(store, Query(since="2026-11-27", until="2026-11-27")), out, fmt="csv"
            )
            == 4
        )
        lines = out.getvalue().splitlines()
        assert lines[0].split(",") == list(LEDGER_COLUMNS)
        assert len(lines) == 5
        assert "03HPB0DA0001B1D8A0000001" in lines[1] and "312.5" in lines[1]
        out = io.StringIO()
        export(export_rows(store, Query()), out, fmt="json")
        records = [json.loads(line) for line in out.getvalue().splitlines()]
        assert {r["event_id"] for r in records} == {r.event_id for r in batch}
        assert all(r["mass_kg"] == 312.5 and r["evidence_sha256"] for r in records)


def test_verify_finds_tampered_rows_and_evidence(db_url: str, tmp_path: Path) -> None:
    station, trust = station_and_trust(tmp_path)
    batch = rows(station, trust, 3, photo=True)
    evidence = EvidenceStore(tmp_path / "evidence")
    with Database(db_url) as db:
        store = EventStore(db)
        store.store(batch[:2])
        report = verify_all(store, trust, evidence)
        assert report.ok and report.events == 2 and len(report.evidence_missing) == 2
        # a row written around the ingest, with another event's signature
        bad = replace(batch[2], cose=batch[0].cose)
        store.store([bad])
        path = evidence.path(batch[1].evidence[0].sha256)
        path.parent.mkdir(parents=True)
        path.write_bytes(b"not the photo")
        report = verify_all(store, trust, evidence)
        assert not report.ok
        assert any(batch[2].event_id in p and "columns" in p for p in report.problems)
        assert any("hash mismatch" in p for p in report.problems)


def _blocked_on_a_lock(url: str, timeout: float = 10.0) -> None:
    """Wait until some session on ``url``'s database waits for a row lock (our store)."""
    end = time.monotonic() + timeout
    with Database(url) as watcher:
        while time.monotonic() < end:
            waiting = watcher.query(
                "SELECT COUNT(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if waiting[0][0]:
                return
            time.sleep(0.01)
    raise AssertionError("the store never waited for the other worker's insert")


@pytest.mark.parametrize("path", ["store", "_store_checked"])
def test_event_another_worker_commits_meanwhile_with_other_bytes_is_a_conflict(
    postgres_url: str, tmp_path: Path, path: str
) -> None:
    # Worker A holds an uncommitted insert of event E with other bytes (and other evidence);
    # worker B stores E. B must wait for A, then report what is stored: a conflict, and add
    # none of its evidence links to A's event. (Before: B looked E up first, saw nothing, its
    # INSERT ... ON CONFLICT DO NOTHING skipped the row and B answered "stored".)
    station, trust = station_and_trust(tmp_path)
    [mine] = rows(station, trust, 1, photo=True)
    theirs = replace(mine, cose=mine.cose + b"x", evidence=())
    with Database(postgres_url) as a, Database(postgres_url) as b:
        EventStore(a)
        store_b = EventStore(b, migrate=False)
        outcome: dict[str, str] = {}

        def store() -> None:
            result = getattr(store_b, path)([mine], [])
            outcome.update(result[0] if isinstance(result, tuple) else result)

        worker = threading.Thread(target=store)
        with a.transaction() as tx:
            tx.bulk_insert("events", COLUMNS, [theirs.values()])
            worker.start()
            _blocked_on_a_lock(postgres_url)
        worker.join(30)
        assert outcome == {mine.event_id: "conflict"}
        assert [r.cose for r in find(store_b, Query(event_id=mine.event_id))] == [theirs.cose]
        assert store_b.db.query("SELECT COUNT(*) FROM evidence")[0][0] == 0


def test_batch_with_a_stored_event_falls_back_and_stores_the_rest(
    db_url: str, tmp_path: Path
) -> None:
    station, trust = station_and_trust(tmp_path)
    batch = rows(station, trust, 4, photo=True)
    refused = RefusalRow("2026-11-27T10:00:05Z", "t", "bad_signature", "d", None, "ab" * 32)
    with Database(db_url) as db:
        store = EventStore(db)
        assert store.store(batch[:1]) == {batch[0].event_id: "stored"}
        # the bulk insert meets event 0 and is rolled back whole; the checked path stores 1..3
        outcomes = store.store([*batch, replace(batch[3], cose=b"other")], [refused])
        assert outcomes == {
            batch[0].event_id: "duplicate",
            **{e.event_id: "stored" for e in batch[1:]},
        }
        assert store.count() == 4
        assert store.refusals() == [refused]
        assert db.query("SELECT COUNT(*) FROM evidence")[0][0] == 4
