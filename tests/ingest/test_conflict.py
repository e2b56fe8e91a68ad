"""Another event under a stored event id: refused ``conflict`` with a signed receipt, the stored
record untouched; a byte-identical redelivery stays an idempotent accept. SQLite and PostgreSQL,
and two workers racing the same ids with different bytes."""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from edge_agent.ingest.db import Database
from edge_agent.ingest.records import Query, find
from edge_agent.ingest.store import EventStore
from tests.ingest.helpers import Worker, rows, station_and_trust, topic, twin

pytestmark = pytest.mark.timeout(120)


def test_store_decides_every_row_also_within_one_batch(db_url: str, tmp_path: Path) -> None:
    station, trust = station_and_trust(tmp_path)
    a, b = rows(station, trust, 2)
    a2 = replace(a, cose=twin(station, a.event_id))
    b2 = replace(b, cose=twin(station, b.event_id))
    with Database(db_url) as db:
        store = EventStore(db)
        assert store.store_each([a]) == ["stored"]
        # redelivery, a twin of a stored event, a new event followed by its twin and itself
        assert store.store_each([a, a2, b, b2, b]) == [
            "duplicate",
            "conflict",
            "stored",
            "conflict",
            "stored",
        ]
        # the twin first: it is the one stored, the original after it is the conflict
        assert store.store_each([b2, b]) == ["conflict", "duplicate"]
        assert store.count() == 2
        assert [r.cose for r in find(store, Query(event_id=a.event_id))] == [a.cose]
        assert [r.cose for r in find(store, Query(event_id=b.event_id))] == [b.cose]


def test_a_reused_event_id_is_refused_with_a_signed_conflict_receipt(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    station, _trust = station_and_trust(tmp_path)
    where = topic(station)
    worker = Worker(tmp_path, db_url, "w1")
    try:
        first, good = station.next_event()
        other = twin(station, first.event_id)
        second, good2 = station.next_event()
        other2 = twin(station, second.event_id)
        worker.process(where, [good])
        worker.process(where, [good])  # byte-identical redelivery
        with caplog.at_level(logging.WARNING, logger="edge_agent.ingest"):
            worker.process(where, [other])
            worker.process(where, [good2, other2])  # the twin in the same batch
        assert worker.items == [
            (first.event_id, "accepted", "stored"),
            (first.event_id, "accepted", "duplicate"),
            (first.event_id, "rejected", "conflict"),
            (second.event_id, "accepted", "stored"),
            (second.event_id, "rejected", "conflict"),
        ]
        assert worker.acked == [good, good, other, good2, other2]  # nothing left to re-deliver
        ingest = worker.ingest
        assert (ingest.stored, ingest.duplicates, ingest.conflicts, ingest.refused) == (2, 1, 2, 2)
        assert ingest.store.count() == 2
        assert [r.cose for r in find(ingest.store, Query(event_id=first.event_id))] == [good]
        assert [r.cose for r in find(ingest.store, Query(event_id=second.event_id))] == [good2]
        refusals = ingest.store.refusals()
        assert [(r.reason, r.event_id, r.topic) for r in refusals] == [
            ("conflict", first.event_id, where),
            ("conflict", second.event_id, where),
        ]
        assert [r.payload_sha256 for r in refusals] == [
            hashlib.sha256(other).hexdigest(),
            hashlib.sha256(other2).hexdigest(),
        ]
        logged = [r.getMessage() for r in caplog.records if getattr(r, "reason", "") == "conflict"]
        assert logged == [
            f"event refused: id {first.event_id} stored with other bytes",
            f"event refused: id {second.event_id} stored with other bytes",
        ]
    finally:
        worker.close()


def test_two_workers_racing_the_same_ids_with_different_bytes(db_url: str, tmp_path: Path) -> None:
    station, _trust = station_and_trust(tmp_path)
    where = topic(station)
    events = [station.next_event() for _ in range(30)]
    mine = [signed for _, signed in events]
    theirs = [twin(station, event.event_id) for event, _ in events]
    one, two = Worker(tmp_path, db_url, "w1"), Worker(tmp_path, db_url, "w2")
    try:
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def run(worker: Worker, payloads: list[bytes]) -> None:
            start.wait(10)
            try:
                worker.process(where, payloads)
            except BaseException as exc:  # reported below
                errors.append(exc)

        # opposite orders: the inserts must not deadlock, whichever comes first
        threads = [
            threading.Thread(target=run, args=(one, mine)),
            threading.Thread(target=run, args=(two, theirs[::-1])),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        store = one.ingest.store
        assert store.count() == 30
        for (event, signed), other in zip(events, theirs, strict=True):
            a = [i for i in one.items if i[0] == event.event_id]
            b = [i for i in two.items if i[0] == event.event_id]
            [stored] = [r.cose for r in find(store, Query(event_id=event.event_id))]
            # exactly one version stored; its worker accepted it, the other refused the twin
            if stored == signed:
                assert (a, b) == (
                    [(event.event_id, "accepted", "stored")],
                    [(event.event_id, "rejected", "conflict")],
                )
            else:
                assert stored == other
                assert (a, b) == (
                    [(event.event_id, "rejected", "conflict")],
                    [(event.event_id, "accepted", "stored")],
                )
        assert one.ingest.stored + two.ingest.stored == 30
        assert one.ingest.conflicts + two.ingest.conflicts == 30
        assert sorted(r.reason for r in store.refusals()) == ["conflict"] * 30
    finally:
        one.close()
        two.close()
