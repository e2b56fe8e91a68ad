"""The SQLite outbox on its own: durability settings, order, limits, disk full, corruption."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.errors import OutboxError, OutboxFullError
from edge_agent.uplink.outbox import Outbox, OutboxMessage
from edge_agent.uplink.settings import OutboxSettings

T = "battrace/v1/s/b/event"


def test_pragmas_wal_and_full_sync(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    assert ob._writer.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ob._writer.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    ob.close()


def test_add_is_committed_and_visible_to_another_connection(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ids = ob.add(T, b"one", "k1")
    # a second connection (another process would see the same) sees the row right away
    other = sqlite3.connect(tmp_path / "o.db")
    assert other.execute("SELECT id, key, payload FROM outbox").fetchall() == [
        (ids[0], "k1", b"one")
    ]
    other.close()
    ob.close()


def test_order_survives_reopen_and_settle_deletes(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.add_many([OutboxMessage(T, f"p{i}".encode(), f"k{i}") for i in range(10)])
    ob.close()
    ob = Outbox(tmp_path / "o.db")
    assert ob.depth == 10 and ob.status().bytes == sum(len(f"p{i}") for i in range(10))
    rows = ob.fetch(0, 100)
    assert [r.key for r in rows] == [f"k{i}" for i in range(10)]
    ob.settle(delivered=[rows[0].id, rows[1].id], attempted=[rows[2].id])
    assert ob.depth == 8
    assert [r.key for r in ob.fetch(0, 100)][:2] == ["k2", "k3"]
    assert ob.fetch(0, 1)[0].attempts == 1
    ob.close()


def test_duplicate_key_and_topic_kept_once(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    first = ob.add(T, b"a", "k", companions=[OutboxMessage(T + "/evidence/k", b"jpg", "k")])
    again = ob.add(T, b"a", "k")
    assert again == first[:1]
    assert ob.depth == 2
    ob.close()


def test_failed_rows_back_off_and_retry_resets(tmp_path: Path) -> None:
    now = [1000.0]
    ob = Outbox(tmp_path / "o.db", clock=lambda: now[0])
    (rid,) = ob.add(T, b"a", "k")
    ob.settle(attempted=[rid], failed=[(rid, 1060.0, "Not authorized")])
    assert ob.fetch(0, 10) == []  # backing off
    assert ob.next_due() == 1060.0
    row = ob.rows()[0]
    assert row.attempts == 1 and row.last_error == "Not authorized"
    assert ob.retry_all() == 1
    assert [r.attempts for r in ob.fetch(0, 10)] == [0]
    ob.close()


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_events": 3}, "max_events=3"),
        ({"max_bytes": 1024}, "max_bytes=1024"),
        ({"min_free_disk_bytes": 2**50}, "min_free_disk_bytes"),
    ],
)
def test_limits_refuse_new_rows_and_keep_stored(
    tmp_path: Path, limits: dict[str, int], message: str
) -> None:
    ob = Outbox(tmp_path / "o.db", OutboxSettings(**limits)) if "min_free" not in message else None
    if ob is None:
        ob = Outbox(tmp_path / "o.db", OutboxSettings())
        ob.add(T, b"x" * 300, "k0")
        ob.settings = OutboxSettings(**limits)
    else:
        for i in range(3):
            ob.add(T, b"x" * 300, f"k{i}")
    before = [r.key for r in ob.rows()]
    with pytest.raises(OutboxFullError, match=message) as info:
        ob.add(T, b"x" * 300, "new")
    assert "nothing was deleted" in str(info.value) or "refused" in str(info.value)
    assert [r.key for r in ob.rows()] == before
    ob.close()


def test_max_age_refuses_when_oldest_is_stale(tmp_path: Path) -> None:
    now = [0.0]
    ob = Outbox(tmp_path / "o.db", OutboxSettings(max_age_days=1.0), clock=lambda: now[0])
    ob.add(T, b"a", "old")
    now[0] = 2 * 86400
    with pytest.raises(OutboxFullError, match="max_age_days"):
        ob.add(T, b"b", "new")
    ob.settle(delivered=[ob.rows()[0].id])  # once the backlog is delivered, adds work again
    assert ob.add(T, b"b", "new")
    ob.close()


def test_disk_full_refused_with_clear_error_rows_intact(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_page_count=40)  # 40 x 4 KiB pages
    stored = []
    with pytest.raises(OutboxFullError, match="database or disk is full") as info:
        for i in range(1000):
            ob.add(T, f"{i}|".encode() + b"x" * 1000, f"k{i}")
            stored.append(f"k{i}")
    assert "stored events are intact" in str(info.value)
    assert len(stored) > 10
    assert [r.key for r in ob.rows(limit=10_000)] == stored
    assert ob.depth == len(stored)
    # delivering frees pages: adds work again, and the table is consistent
    ob.settle(delivered=[r.id for r in ob.rows(limit=5)])
    ob.add(T, b"again", "again")
    assert ob._writer.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ob.close()
    reopened = Outbox(tmp_path / "o.db")
    assert [r.key for r in reopened.rows(limit=10_000)] == [*stored[5:], "again"]
    reopened.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated_header", "bad_page"])
def test_corrupt_file_moved_aside_and_reported(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "o.db"
    ob = Outbox(path)
    for i in range(200):
        ob.add(T, b"y" * 500, f"k{i}")
    ob.close()
    data = bytearray(path.read_bytes())
    if damage == "garbage":
        data = bytearray(b"\x13" * 256)
    elif damage == "truncated_header":
        data[0:16] = b"not sqlite file!"
    else:
        data[4096 * 2 : 4096 * 2 + 200] = b"\xff" * 200  # a b-tree page
    path.write_bytes(bytes(data))
    ob = Outbox(path)
    assert ob.corruption is not None
    moved = Path(ob.corruption.moved_to)
    assert moved.exists() and moved.read_bytes() == bytes(data)  # kept, byte for byte
    assert "moved aside" in str(ob.corruption)
    assert ob.depth == 0
    ob.add(T, b"fresh", "fresh")
    assert [r.key for r in ob.rows()] == ["fresh"]
    ob.close()


def test_unopenable_path_is_an_outbox_error_not_a_move(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(OutboxError):
        Outbox(tmp_path / "dir.db")
    assert (tmp_path / "dir.db").is_dir()


def test_invalid_message_rejected(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    with pytest.raises(OutboxError):
        ob.add("", b"x", "k")
    with pytest.raises(OutboxError):
        ob.add(T, b"x", "")
    ob.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=64), st.text(min_size=1, max_size=8)), max_size=30))
def test_fuzz_store_fetch_roundtrip(
    tmp_path_factory: pytest.TempPathFactory, items: list[tuple[bytes, str]]
) -> None:
    ob = Outbox(tmp_path_factory.mktemp("fz") / "o.db")
    expected: dict[str, bytes] = {}
    for payload, key in items:
        ob.add(T, payload, key)
        expected.setdefault(key, payload)
    rows = ob.fetch(0, 1000)
    assert [r.key for r in rows] == list(expected)
    assert [r.payload for r in rows] == list(expected.values())
    assert ob.status().bytes == sum(map(len, expected.values()))
    ob.close()


def test_fetch_bounded_by_bytes_but_always_one_row(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    for i, size in enumerate([300, 300, 300, 5000, 10]):
        ob.add(T, b"x" * size, f"k{i}")
    assert [r.key for r in ob.fetch(0, 10, max_bytes=700)] == ["k0", "k1", "k2"]
    assert [r.key for r in ob.fetch(0, 10, max_bytes=1)] == ["k0"]
    assert [r.key for r in ob.fetch(3, 10, max_bytes=100)] == ["k3"]  # bigger than the budget
    assert [r.key for r in ob.fetch(0, 2)] == ["k0", "k1"]
    ob.close()
