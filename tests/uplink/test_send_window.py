"""The drainer's parts on their own: send window, back-off, ack expiry, settler."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edge_agent.errors import OutboxError
from edge_agent.uplink.outbox import Outbox, OutboxMessage
from edge_agent.uplink.retry import AckExpiry, Backoff
from edge_agent.uplink.send_window import Flight, RowFeed, SendWindow
from edge_agent.uplink.settler import Settler


def _flight(row_id: int, size: int = 10, sent: float = 0.0) -> Flight:
    return Flight(row_id, f"k{row_id}", 1, sent, 0.0, size)


def test_window_bounded_by_count_and_bytes_but_one_row_always_goes() -> None:
    window = SendWindow(max_count=2, max_bytes=100)
    assert window.is_open()
    window.add(1, _flight(1, size=5_000))  # bigger than the byte budget: still allowed alone
    assert not window.is_open()
    assert window.pop(1) == _flight(1, size=5_000)
    assert window.bytes == 0 and window.rows == set() and window.is_open()
    window.add(2, _flight(2))
    window.add(3, _flight(3))
    assert not window.is_open()  # count
    assert window.pop(99) is None  # a status message's PUBACK
    assert len(window) == 2 and window.rows == {2, 3} and window.bytes == 20


def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(1.0, 10.0)
    assert [backoff.delay(n) for n in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.delay(10_000) == 10.0


def test_ack_expiry_counts_from_the_later_of_send_and_reconnect() -> None:
    window = SendWindow(10, 10_000)
    window.add(1, _flight(1, sent=0.0))
    window.add(2, _flight(2, sent=50.0))
    expiry = AckExpiry(60.0)
    expiry.connected_since = 30.0  # row 1 was sent before the reconnect
    assert expiry.expire(window, 89.9) == []  # 59.9 s since the reconnect
    assert expiry.expire(window, 90.5) == []  # stale, but looked 0.6 s ago (once a second)
    assert [f.row_id for f in expiry.expire(window, 91.0)] == [1]
    assert window.rows == {2}


def test_row_feed_skips_rows_in_flight_and_rewinds(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    try:
        ids = outbox.add_many([OutboxMessage("t", b"x", f"k{i}") for i in range(5)])
        feed = RowFeed(outbox, rescan_s=5.0)
        busy = {ids[1], ids[3]}
        got = []
        while (row := feed.next_row(2, 10_000, busy.__contains__)) is not None:
            got.append(row.id)
        assert got == [ids[0], ids[2], ids[4]]
        feed.rewind()
        assert feed.next_row(2, 10_000, lambda _r: False).id == ids[0]  # type: ignore[union-attr]
    finally:
        outbox.close()


class _FlakyOutbox(Outbox):
    fail = True

    def settle(self, **kw: object) -> None:  # type: ignore[override]
        if self.fail:
            raise OutboxError("disk full")
        super().settle(**kw)  # type: ignore[arg-type]


def test_settler_puts_a_failed_group_back_in_front(tmp_path: Path) -> None:
    outbox = _FlakyOutbox(tmp_path / "o.db")
    ids = outbox.add_many([OutboxMessage("t", b"x", f"k{i}") for i in range(3)])
    done = threading.Semaphore(0)
    committed: list[bool] = []
    settler = Settler(
        outbox,
        batch=1,
        flush_s=0.0,
        on_done=done.release,
        on_committed=lambda: committed.append(True),
    )
    settler.start()
    try:
        settler.delivered(ids[0])
        settler.flush()
        assert settler.settling is not None
        settler.delivered(ids[1])  # arrives while the first group is being committed
        assert done.acquire(timeout=10)
        settler.settled()
        assert settler.settling is None and committed == []
        assert settler.acked == [ids[0], ids[1]]  # the failed group first, in order
        assert settler.acked_rows == {ids[0], ids[1]}  # still never re-sent
        assert settler.due_in() is not None and settler.due_in() > 0  # type: ignore[operator]
        outbox.fail = False
        settler.finish()  # drainer exit: commits what is left on this thread
        assert outbox.depth == 1
    finally:
        settler.stop(5)
        outbox.close()


@pytest.mark.parametrize("pending", [False, True])
def test_settler_due_in_only_with_updates(tmp_path: Path, pending: bool) -> None:
    outbox = Outbox(tmp_path / "o.db")
    settler = Settler(
        outbox, batch=64, flush_s=10.0, on_done=lambda: None, on_committed=lambda: None
    )
    if pending:
        settler.sent(1)
        due = settler.due_in()
        assert due is not None and 9.0 < due <= 10.0
    else:
        assert settler.due_in() is None
    outbox.close()
