"""``edge-agent ingest migrate`` and ``records`` on the command line: results and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.ingest.db import Database
from edge_agent.ingest.migrations import LATEST
from edge_agent.ingest.store import EventStore
from tests.ingest.helpers import rows, station_and_trust


def test_migrate_then_find_and_bad_queries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'ingest.sqlite3'}"
    assert main(["ingest", "migrate", "--database", url]) == 0
    assert f"schema version {LATEST}" in capsys.readouterr().out
    station, trust = station_and_trust(tmp_path)
    batch = rows(station, trust, 2)
    with Database(url) as db:
        EventStore(db).store(batch)
    assert main(["records", "find", "--database", url, "--event", batch[0].event_id]) == 0
    assert batch[0].event_id in capsys.readouterr().out
    # nothing found: exit status 1, no output
    assert main(["records", "find", "--database", url, "--vin", "LFV2A21K6D4000001"]) == 1
    for argv in (
        ["records", "find", "' OR '1'='1", "--database", url],
        ["records", "find", "--database", url, "--station", "st01; DROP TABLE events"],
        ["records", "find", "--database", url, "--since", "2026-01-01' --"],
        ["records", "export", "--database", url, "--format", "xlsx"],
        ["records", "export", "--database", url, "--to", "yesterday"],
    ):
        assert main(argv) == 1, argv
        assert "error" in capsys.readouterr().err.lower()
    with Database(url) as db:
        assert EventStore(db).count() == 2
    assert main(["records", "export", "--database", url, "--format", "json"]) == 0
    assert capsys.readouterr().out.count("\n") == 2
