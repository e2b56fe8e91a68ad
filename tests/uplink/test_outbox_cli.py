"""``edge-agent outbox status|list|retry`` on an outbox found through the config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.uplink.outbox import Outbox

T = "battrace/v1/site-1/bench-1/event"


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "edge-agent.toml"
    cfg.write_text(f'[station]\ndata_dir = "{tmp_path / "data"}"\n')
    return cfg


def test_status_list_retry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    ob = Outbox(tmp_path / "data" / "outbox.sqlite3")
    ids = [ob.add(T, f"e{i}".encode() * 10, f"evt-{i}")[0] for i in range(3)]
    ob.settle(attempted=ids[:2], failed=[(ids[0], 4e9, "Not authorized")])
    ob.close()

    assert main(["--config", str(cfg), "outbox", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["depth"] == 3 and status["bytes"] == 60 and status["max_attempts"] == 1

    assert main(["--config", str(cfg), "outbox", "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["key"] for r in rows] == ["evt-0", "evt-1", "evt-2"]
    assert rows[0]["last_error"] == "Not authorized" and rows[0]["attempts"] == 1
    assert [r["state"] for r in rows] == ["refused", "stored", "stored"]
    assert rows[0]["reason"] == "Not authorized"

    assert main(["--config", str(cfg), "outbox", "list"]) == 0
    text = capsys.readouterr().out
    assert "evt-0" in text and "last error: Not authorized" in text and "refused" in text

    assert main(["--config", str(cfg), "outbox", "retry"]) == 0
    assert "3 rows" in capsys.readouterr().out
    ob = Outbox(tmp_path / "data" / "outbox.sqlite3")
    assert [r.attempts for r in ob.fetch(0, 10)] == [0, 0, 0]  # all due again, none backing off
    assert [r.state for r in ob.rows()] == ["stored"] * 3
    ob.close()


def test_retry_one_rejected_row_by_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    ob = Outbox(tmp_path / "data" / "outbox.sqlite3", receipts=True)
    ids = [ob.add(T, b"x" * 10, f"evt-{i}")[0] for i in range(2)]
    ob.settle(delivered=ids)
    ob.apply_receipt([("evt-0", "rejected", "unknown_kid"), ("evt-1", "rejected", "revoked")])
    ob.close()
    assert main(["--config", str(cfg), "outbox", "list"]) == 0
    text = capsys.readouterr().out
    assert text.count("rejected") == 2 and "unknown_kid" in text and "revoked" in text
    assert main(["--config", str(cfg), "outbox", "retry", str(ids[0])]) == 0
    assert "1 rows" in capsys.readouterr().out
    assert main(["--config", str(cfg), "outbox", "retry", "999"]) == 1
    assert main(["--config", str(cfg), "outbox", "retry", "1", "--all"]) == 2
    capsys.readouterr()
    ob = Outbox(tmp_path / "data" / "outbox.sqlite3")
    assert [(r.key, r.state) for r in ob.rows()] == [("evt-0", "stored"), ("evt-1", "rejected")]
    assert [r.key for r in ob.fetch(0, 10)] == ["evt-0"]  # a rejected row waits for a person
    ob.close()


def test_status_reports_corrupt_outbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "bad.sqlite3"
    db.write_bytes(b"\x00garbage" * 100)
    assert main(["outbox", "--path", str(db), "status"]) == 1
    out = capsys.readouterr().out
    assert "moved aside" in out and "depth:        0 events" in out
    assert list(tmp_path.glob("bad.sqlite3.corrupt-*"))


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[uplink.outbox]\nmax_events = 0\n")
    assert main(["--config", str(cfg), "outbox", "status"]) == 2
    assert "uplink.outbox.max_events" in capsys.readouterr().err
