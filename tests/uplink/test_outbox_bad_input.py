"""The outbox with a data folder that is a file, and the wording of its full message (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.errors import OutboxError, OutboxFullError
from edge_agent.uplink.outbox import Outbox, OutboxMessage
from edge_agent.uplink.settings import OutboxSettings

T = "battrace/v1/site-1/bench-1/event"


def test_folder_is_a_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("not a folder")
    with pytest.raises(OutboxError, match="cannot create the outbox folder"):
        Outbox(data / "outbox.sqlite3")


def test_full_message_counts_events_and_rows(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", OutboxSettings(max_events=4))
    for i in range(2):  # two events, each with an evidence photo: four rows
        ob.add(T, b"e", f"evt-{i}", companions=[OutboxMessage(T + "/photo", b"p", f"evt-{i}")])
    with pytest.raises(OutboxFullError) as info:
        ob.add(T, b"e", "evt-2")
    assert "4 rows stored (2 events with their companion rows)" in str(info.value)
    assert "max_events=4 rows" in str(info.value)
    ob.close()
