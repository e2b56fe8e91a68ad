"""Outbox states with receipts: stored -> sent -> accepted/rejected/refused; schema migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge_agent.uplink.outbox import Outbox

T = "battrace/v1/s/st/event"
E = "battrace/v1/s/st/evidence/k1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_puback_marks_sent_and_only_an_accepted_receipt_deletes(tmp_path: Path) -> None:
    clock = Clock()
    ob = Outbox(tmp_path / "o.sqlite3", receipts=True, receipt_timeout_s=30, clock=clock)
    ids = ob.add(T, b"event", "k1", companions=[_evidence()])
    ob.settle(delivered=ids, attempted=ids)
    assert [r.state for r in ob.rows()] == ["sent", "sent"] and ob.depth == 2
    assert ob.fetch(0, 10) == []  # waiting for the receipt
    clock.now += 31  # no receipt within receipt_timeout_s: due again
    assert [r.id for r in ob.fetch(0, 10)] == ids
    assert ob.apply_receipt([("k1", "accepted", None)]) == 2
    assert ob.rows() == [] and ob.depth == 0 and ob.status().bytes == 0
    ob.close()


def test_accepted_before_puback_deletes_at_puback(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite3", receipts=True)
    ids = ob.add(T, b"event", "k1", companions=[_evidence()])
    ob.settle(delivered=ids[:1])
    ob.apply_receipt([("k1", "accepted", None)])
    assert [(r.id, r.state) for r in ob.rows()] == [(ids[1], "accepted")]
    assert [r.id for r in ob.fetch(0, 10)] == [ids[1]]  # evidence still goes out once
    ob.settle(delivered=ids[1:])
    assert ob.rows() == [] and ob.depth == 0
    ob.close()


def test_rejected_stays_with_reason_until_retried(tmp_path: Path) -> None:
    clock = Clock()
    ob = Outbox(tmp_path / "o.sqlite3", receipts=True, receipt_timeout_s=1, clock=clock)
    (row,) = ob.add(T, b"event", "k1")
    ob.settle(delivered=[row])
    ob.apply_receipt([("k1", "rejected", "unknown_kid")])
    clock.now += 3600
    assert ob.fetch(0, 10) == []
    (held,) = ob.rows()
    assert (held.state, held.reason) == ("rejected", "unknown_kid")
    assert ob.state_counts() == {"stored": 0, "sent": 0, "accepted": 0, "rejected": 1, "refused": 0}
    assert ob.retry([row]) == 1
    assert [(r.state, r.reason) for r in ob.fetch(0, 10)] == [("stored", None)]
    ob.close()


def test_refused_by_the_broker_keeps_the_row_with_the_reason(tmp_path: Path) -> None:
    clock = Clock()
    ob = Outbox(tmp_path / "o.sqlite3", receipts=True, clock=clock)
    (row,) = ob.add(T, b"event", "k1")
    ob.settle(attempted=[row], failed=[(row, clock.now + 5, "Not authorized")])
    (held,) = ob.rows()
    assert (held.state, held.reason, held.last_error) == (
        "refused",
        "Not authorized",
        "Not authorized",
    )
    clock.now += 6
    assert [r.id for r in ob.fetch(0, 10)] == [row]  # retried with back-off
    ob.close()


def test_without_receipts_puback_deletes_as_before(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite3")
    ids = ob.add(T, b"event", "k1")
    ob.settle(delivered=ids)
    assert ob.rows() == [] and ob.depth == 0
    ob.close()


def test_replace_payload_makes_a_rejected_row_due_with_new_bytes(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite3", receipts=True)
    (row,) = ob.add(T, b"old", "k1")
    ob.settle(delivered=[row])
    ob.apply_receipt([("k1", "rejected", "replay")])
    ob.replace_payload(row, b"newer bytes")
    (due,) = ob.fetch(0, 10)
    assert (due.payload, due.state, due.key) == (b"newer bytes", "stored", "k1")
    assert ob.status().bytes == len(b"newer bytes")
    ob.close()


def test_an_outbox_file_from_before_the_states_opens_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,
            key TEXT NOT NULL, size INTEGER NOT NULL, created REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, last_attempt REAL,
            next_attempt REAL NOT NULL DEFAULT 0, last_error TEXT, UNIQUE (key, topic));
        INSERT INTO outbox (topic, payload, key, size, created) VALUES
            ('battrace/v1/s/st/event', x'01', 'old-1', 1, 1.0);
        """
    )
    conn.commit()
    conn.close()
    ob = Outbox(path, receipts=True)
    (row,) = ob.rows()
    assert (row.key, row.state, row.reason) == ("old-1", "stored", None)
    ob.settle(delivered=[row.id])
    assert ob.rows()[0].state == "sent"
    ob.close()
    ob = Outbox(path)  # opens again (columns already there)
    assert ob.depth == 1
    ob.close()


def _evidence() -> object:
    from edge_agent.uplink.outbox import OutboxMessage

    return OutboxMessage(E, b"jpeg", "k1")


def test_metrics_count_rows_per_state(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    from edge_agent.uplink.metrics import UplinkMetrics

    registry = CollectorRegistry()
    ob = Outbox(tmp_path / "o.sqlite3", receipts=True)
    UplinkMetrics(registry).bind_outbox(ob)
    ids = [ob.add(T, b"e", f"k{i}")[0] for i in range(3)]
    ob.settle(delivered=ids[:2])
    ob.apply_receipt([("k0", "rejected", "revoked")])

    def rows(state: str) -> float | None:
        return registry.get_sample_value("edge_agent_uplink_outbox_rows", {"state": state})

    assert (rows("stored"), rows("sent"), rows("rejected"), rows("accepted")) == (1, 1, 1, 0)
    ob.close()
