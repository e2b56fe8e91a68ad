"""Outbox states with receipts: stored -> sent -> accepted/rejected/refused; schema migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge_agent.uplink.outbox import Outbox, OutboxMessage

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


def _late_photo(key: str = "k1") -> OutboxMessage:
    return OutboxMessage(E, b"jpeg", key, companion=True)


def test_a_photo_added_after_its_event_was_accepted_leaves_on_its_puback(tmp_path: Path) -> None:
    # the gateway forwards a photo in a later batch than its event; the ingest's receipt may
    # have deleted the event row already, and no receipt will ever name the photo
    ob = Outbox(tmp_path / "o.sqlite3", receipts=True)
    ids = ob.add(T, b"event", "k1")
    ob.settle(delivered=ids)
    ob.apply_receipt([("k1", "accepted", None)])
    assert ob.rows() == []
    (photo,) = ob.add_many([_late_photo()])
    assert [(r.id, r.state) for r in ob.rows()] == [(photo, "accepted")]
    assert [r.id for r in ob.fetch(0, 10)] == [photo]  # still sent once
    ob.settle(delivered=[photo])
    assert ob.rows() == [] and ob.depth == 0
    ob.close()


def test_a_photo_added_after_its_event_was_rejected_is_held_with_it(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite3", receipts=True)
    (event,) = ob.add(T, b"event", "k1")
    ob.settle(delivered=[event])
    ob.apply_receipt([("k1", "rejected", "bad_payload")])
    ob.add_many([_late_photo()])
    assert [(r.state, r.reason) for r in ob.rows()] == [("rejected", "bad_payload")] * 2
    assert ob.fetch(0, 10) == []
    assert ob.retry([event]) == 2  # the operator's retry sends both again
    assert [r.state for r in ob.fetch(0, 10)] == ["stored", "stored"]
    ob.close()


def test_a_photo_with_its_event_still_waiting_waits_too(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite3", receipts=True)
    (event,) = ob.add(T, b"event", "k1")
    ob.settle(delivered=[event])  # sent, no receipt yet
    # in the same batch as its event, or after it: stored, settled by the event's receipt
    ids = ob.add_many([OutboxMessage(T, b"event2", "k2"), _late_photo("k2"), _late_photo()])
    assert [r.state for r in ob.rows()] == ["sent", "stored", "stored", "stored"]
    ob.settle(delivered=ids)
    ob.apply_receipt([("k1", "accepted", None), ("k2", "accepted", None)])
    assert ob.rows() == []
    # two photos of an accepted event in one batch: both leave on their PUBACK
    pair = ob.add_many([_late_photo("k3"), OutboxMessage(E + "b", b"jpeg2", "k3", True)])
    assert [r.state for r in ob.rows()] == ["accepted", "accepted"]
    ob.settle(delivered=pair)
    assert ob.depth == 0
    ob.close()


def test_without_receipts_a_late_photo_is_an_ordinary_row(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite3")
    (photo,) = ob.add_many([_late_photo()])
    assert [r.state for r in ob.rows()] == ["stored"]
    ob.settle(delivered=[photo])
    assert ob.depth == 0
    ob.close()


def test_with_receipts_every_send_of_a_waiting_row_is_counted(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite3", receipts=True, receipt_timeout_s=0.1)
    (row,) = ob.add(T, b"event", "k1")
    for _ in range(3):  # sent and PUBACKed in one settle group, no receipt
        ob.settle(delivered=[row], attempted=[row])
    assert [(r.state, r.attempts) for r in ob.rows()] == [("sent", 3)]
    ob.close()
