"""The outbox's one-executemany path for a gateway batch: ids, duplicates, counters, limits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_agent.errors import OutboxFullError
from edge_agent.uplink.outbox import Outbox, OutboxMessage
from edge_agent.uplink.settings import OutboxSettings

T = "up/site-a/st01/event"


def _stored(path: Path) -> list[tuple[int, str, bytes]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT id, key, payload FROM outbox ORDER BY id").fetchall()
    finally:
        db.close()


def test_batch_ids_are_the_stored_rows(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    first = ob.add_many([OutboxMessage(T, b"a", "k0"), OutboxMessage(T, b"b", "k1")])
    ob.settle(delivered=first)  # ids keep growing after deletes (AUTOINCREMENT)
    ids = ob.add_many([OutboxMessage(T, f"p{i}".encode(), f"k{i + 2}") for i in range(50)])
    assert ids == list(range(first[-1] + 1, first[-1] + 51))
    assert _stored(tmp_path / "o.db") == [
        (ids[i], f"k{i + 2}", f"p{i}".encode()) for i in range(50)
    ]
    assert ob.depth == 50 and ob.status().bytes == sum(len(f"p{i}") for i in range(50))
    ob.close()


def test_batch_with_a_stored_duplicate_keeps_the_first_and_maps_ids(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    (old,) = ob.add(T, b"first", "k5")
    batch = [OutboxMessage(T, f"new{i}".encode(), f"k{i}") for i in range(10)]
    ids = ob.add_many(batch)
    # the duplicate (k5) is not stored again; its id is the first copy's, the rest are new
    assert ids[5] == old
    rows = {key: (row_id, payload) for row_id, key, payload in _stored(tmp_path / "o.db")}
    assert len(rows) == 10 and rows["k5"] == (old, b"first")
    assert all(rows[f"k{i}"] == (ids[i], f"new{i}".encode()) for i in range(10) if i != 5)
    assert ob.depth == 10
    ob.close()


def test_full_outbox_refuses_the_whole_batch(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", OutboxSettings(max_events=5, min_free_disk_bytes=0))
    with pytest.raises(OutboxFullError):
        ob.add_many([OutboxMessage(T, b"x", f"k{i}") for i in range(6)])
    assert _stored(tmp_path / "o.db") == [] and ob.depth == 0
    ob.close()
