"""Replay window after RFC 8613 section 7.4 and its persistence in the gateway state."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.gateway.replay import ReplayWindow
from edge_agent.gateway.state import AcceptedRecord, GatewayState


def _feed(
    window: ReplayWindow, items: list[tuple[int, int]], size: int
) -> tuple[ReplayWindow, list[str]]:
    out = []
    for epoch, seq in items:
        ok, why = window.check(epoch, seq, size)
        out.append("ok" if ok else why)
        if ok:
            window = window.accept(epoch, seq, size)
    return window, out


def test_in_order_out_of_order_and_replays() -> None:
    w, out = _feed(ReplayWindow(), [(1, 5), (1, 6), (1, 4), (1, 6), (1, 4), (1, 10), (1, 7)], 32)
    assert out == ["ok", "ok", "ok", "replayed", "replayed", "ok", "ok"]
    assert (w.epoch, w.top) == (1, 10)


def test_too_old_is_outside_window() -> None:
    _, out = _feed(ReplayWindow(), [(1, 100), (1, 68), (1, 69)], 32)
    assert out == ["ok", "outside_window", "ok"]


def test_new_boot_epoch_resets_and_old_epoch_is_stale() -> None:
    _, out = _feed(ReplayWindow(), [(3, 900), (4, 0), (4, 1), (3, 901), (4, 0)], 32)
    assert out == ["ok", "ok", "ok", "stale_epoch", "replayed"]


def test_large_jump_clears_bitmap() -> None:
    w, out = _feed(ReplayWindow(), [(0, 1), (0, 2), (0, 1000), (0, 999)], 32)
    assert out == ["ok", "ok", "ok", "ok"]
    assert w.bitmap == 0b11


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 80)), max_size=60), st.integers(1, 64))
def test_never_accepts_the_same_pair_twice(items: list[tuple[int, int]], size: int) -> None:
    _, out = _feed(ReplayWindow(), items, size)
    accepted = [p for p, o in zip(items, out, strict=True) if o == "ok"]
    assert len(accepted) == len(set(accepted))


def test_windows_and_seen_ids_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    state = GatewayState(path)
    w = ReplayWindow().accept(7, 40, 64).accept(7, 3, 64)
    state.commit(
        [AcceptedRecord("e1", "k" * 32, "s", "st", ("a" * 64,))], {"k" * 32: w}, [("a" * 64, "e1")]
    )
    state.close()
    state = GatewayState(path)
    assert state.window("k" * 32) == w
    assert state.window("x" * 32) == ReplayWindow()
    assert state.is_seen("e1") and not state.is_seen("e2")
    row = state.expected("a" * 64, "e1")
    assert row is not None and row.forwarded and (row.site, row.station) == ("s", "st")
    state.close()
