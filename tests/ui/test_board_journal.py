"""Today's packs: small rows in memory, whole events read back from the page's journal."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from edge_agent.event_codec import event_to_plain, uuid7
from edge_agent.model import IdentificationEvent
from edge_agent.ui.bench import BenchBoard
from edge_agent.ui.journal import JOURNAL
from tests.support.signing import example_event


def _event(i: int, **changes: object) -> IdentificationEvent:
    base = example_event("00" * 16)
    pack = replace(base.pack, pack_code=f"001PBA100000{i:02d}NABB1234567", serial=f"SN-{i}")
    return replace(base, event_id=uuid7(1_700_000_000_000 + i), pack=pack, **changes)  # type: ignore[arg-type]


def test_rows_are_small_and_events_come_back_whole(tmp_path: Path) -> None:
    board = BenchBoard(data_dir=tmp_path)
    events = [_event(i) for i in range(5)]
    for event in events:
        board.add(event)
    assert [r.event_id for r in board.today] == [e.event_id for e in reversed(events)]
    assert all(r.kept is None and r.offset is not None for r in board.today)
    for event in events:
        record = board.find(event.event_id)
        assert record is not None and board.event(record) == event
    # search reads the small rows: code, passport id or serial, any case
    assert [r.event_id for r in board.search("sn-3")] == [events[3].event_id]
    assert [r.event_id for r in board.search("pba10000004")] == [events[4].event_id]
    assert len(board.search("")) == 5


def test_a_restart_reads_todays_lines_drops_other_days_and_skips_broken_ones(
    tmp_path: Path,
) -> None:
    first = BenchBoard(data_dir=tmp_path)
    original, correction = _event(1), _event(2)
    first.add(original)
    first.add(replace(correction, corrects=original.event_id))
    path = tmp_path / JOURNAL
    yesterday = (first._day - timedelta(days=1)).isoformat()
    old = json.dumps({"day": yesterday, "event": event_to_plain(_event(3))})
    lines = path.read_text().splitlines()
    # yesterday's line first, a torn line between today's: offsets must still hold after both
    path.write_text(old + "\n" + lines[0] + "\n" + '{"day": "tor' + "\n" + lines[1] + "\n")
    again = BenchBoard(data_dir=tmp_path)
    assert [r.event_id for r in again.today] == [correction.event_id, original.event_id]
    for record in again.today:
        event = again.event(record)
        assert event is not None and event.event_id == record.event_id
    assert again.today[1].corrected_by == correction.event_id
    assert len(path.read_text().splitlines()) == 2  # yesterday's and the torn line went


def test_a_journal_that_cannot_be_written_keeps_the_event_in_memory(tmp_path: Path) -> None:
    (tmp_path / JOURNAL).mkdir()  # opening it for append fails
    board = BenchBoard(data_dir=tmp_path)
    event = _event(1)
    board.add(event)
    record = board.today[0]
    assert record.offset is None and board.event(record) == event


def test_a_line_that_changed_under_the_board_is_not_taken_for_another_event(
    tmp_path: Path,
) -> None:
    board = BenchBoard(data_dir=tmp_path)
    board.add(_event(1))
    record = board.today[0]
    (tmp_path / JOURNAL).write_text(
        json.dumps({"day": board._day.isoformat(), "event": event_to_plain(_event(2))}) + "\n"
    )
    assert board.event(record) is None
    assert board.event(replace(record, offset=10**9)) is None
