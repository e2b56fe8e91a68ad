"""Group commit: concurrent writers share transactions; a refused write does not undo others."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edge_agent.errors import OutboxFullError
from edge_agent.uplink.outbox import Outbox
from edge_agent.uplink.settings import OutboxSettings

T = "battrace/v1/s/b/event"


def test_concurrent_adds_all_committed_in_fewer_transactions(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    barrier = threading.Barrier(8)
    ids: dict[str, int] = {}
    lock = threading.Lock()

    def producer(k: int) -> None:
        barrier.wait()
        for i in range(40):
            (rid,) = ob.add(T, f"p{k}-{i}".encode(), f"p{k}-{i}")
            with lock:
                ids[f"p{k}-{i}"] = rid

    threads = [threading.Thread(target=producer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 320 and ob.depth == 320
    assert ob.transactions <= 320  # never more commits than writes; usually far fewer
    # each producer's own events keep their order
    for k in range(8):
        mine = [ids[f"p{k}-{i}"] for i in range(40)]
        assert mine == sorted(mine)
    ob.close()
    again = Outbox(tmp_path / "o.db")
    assert again.depth == 320
    assert {r.key for r in again.rows(limit=1000)} == set(ids)
    again.close()


def test_refused_write_in_a_group_leaves_the_others(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", OutboxSettings(max_events=50))
    barrier = threading.Barrier(6)
    refused: list[str] = []
    lock = threading.Lock()

    def producer(k: int) -> None:
        barrier.wait()
        for i in range(10):
            try:
                ob.add(T, b"x", f"p{k}-{i}")
            except OutboxFullError:
                with lock:
                    refused.append(f"p{k}-{i}")

    threads = [threading.Thread(target=producer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ob.depth == 50 and len(refused) == 10
    stored = {r.key for r in ob.rows(limit=100)}
    assert not stored & set(refused)
    ob.close()


def test_settle_and_add_share_a_group_and_counters_stay_true(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    first = ob.add_many([])  # empty add is a no-op transaction
    assert first == []
    ids = [ob.add(T, b"12345", f"k{i}")[0] for i in range(20)]
    done = threading.Event()

    def settler() -> None:
        ob.settle(delivered=ids[:10])
        done.set()

    t = threading.Thread(target=settler)
    t.start()
    ob.add(T, b"abc", "late")
    t.join()
    assert done.is_set()
    s = ob.status()
    assert s.depth == 11 and s.bytes == 10 * 5 + 3
    ob.close()


def test_disk_full_in_group_refuses_everyone_in_it(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_page_count=30)
    with pytest.raises(OutboxFullError):
        for i in range(500):
            ob.add(T, b"z" * 2000, f"k{i}")
    depth = ob.depth
    assert depth == len(ob.rows(limit=1000)) > 0
    ob.close()
