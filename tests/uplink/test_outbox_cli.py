"""``edge-agent outbox status|list|retry`` on an outbox found through the config file."""

from __future__ import annotations

import json
import os
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


@pytest.mark.parametrize("command", ["status", "list", "retry"])
def test_corrupt_outbox_is_reported_not_moved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """An inspection command reports a garbage file; only the agent moves it aside (issue 15)."""
    db = tmp_path / "bad.sqlite3"
    garbage = b"\x00garbage" * 100
    db.write_bytes(garbage)
    assert main(["outbox", "--path", str(db), command]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "not a readable outbox" in err[0] and "nothing was changed" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.sqlite3"]
    assert db.read_bytes() == garbage


@pytest.mark.parametrize("command", ["status", "list", "retry"])
def test_missing_outbox_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """`outbox --path typo/outbox.sqlite3 status` says so and creates no folder or file."""
    typo = tmp_path / "typo" / "outbox.sqlite3"
    assert main(["outbox", "--path", str(typo), command]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --path: no outbox at {typo}"]
    assert list(tmp_path.iterdir()) == []


def test_missing_outbox_from_config_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path)
    assert main(["--config", str(cfg), "outbox", "status"]) == 2
    assert "no outbox at" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_outbox_is_a_fifo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "outbox.sqlite3"
    os.mkfifo(fifo)
    assert main(["outbox", "--path", str(fifo), "status"]) == 2
    assert "is not a regular file" in capsys.readouterr().err


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[uplink.outbox]\nmax_events = 0\n")
    assert main(["--config", str(cfg), "outbox", "status"]) == 2
    assert "uplink.outbox.max_events" in capsys.readouterr().err
