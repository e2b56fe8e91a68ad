"""The outbox with a data folder that is a file, and the wording of its full message (issue 15)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edge_agent.errors import OutboxError, OutboxFullError
from edge_agent.uplink.outbox import Outbox, OutboxMessage
from edge_agent.uplink.settings import OutboxSettings

T = "battrace/v1/site-1/bench-1/event"


def test_folder_is_a_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("not a folder")
    with pytest.raises(OutboxError, match="cannot create the outbox"):
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


def test_outbox_files_are_owner_only(tmp_path: Path) -> None:
    """They hold VINs and pack codes: 0600 for the database, its -wal and -shm (issue 15)."""
    data = tmp_path / "data"
    ob = Outbox(data / "outbox.sqlite3")
    ob.add(T, b"VIN LFV2A21K8E3000001", "evt-1")
    files = sorted(data.iterdir())
    assert {p.name for p in files} >= {"outbox.sqlite3", "outbox.sqlite3-wal"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    ob.close()


def test_existing_readable_outbox_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    Outbox(path).close()
    os.chmod(path, 0o644)
    Outbox(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_gateway_state_and_boot_epoch_are_owner_only(tmp_path: Path) -> None:
    from edge_agent.gateway.state import GatewayState
    from edge_agent.station.boot import BOOT_FILE, next_boot_epoch

    state = GatewayState(tmp_path / "gw" / "state.sqlite3")
    state.close()
    assert stat.S_IMODE((tmp_path / "gw" / "state.sqlite3").stat().st_mode) == 0o600
    next_boot_epoch(tmp_path / "st")
    assert stat.S_IMODE((tmp_path / "st" / BOOT_FILE).stat().st_mode) == 0o600
