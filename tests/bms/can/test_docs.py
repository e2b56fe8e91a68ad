"""The commands shown in docs/add-a-pack-profile.md under "Check it" run and succeed."""

from __future__ import annotations

import shlex
from pathlib import Path

from edge_agent.cli import main

ROOT = Path(__file__).resolve().parents[3]


def test_documented_profile_commands(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("EDGE_AGENT_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    text = (ROOT / "docs" / "add-a-pack-profile.md").read_text()
    commands = [line[2:] for line in text.splitlines() if line.startswith("$ edge-agent ")]
    assert len(commands) == 3
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0, command
    out = capsys.readouterr().out
    assert "ok       tests/bms/can/data/demo-pack.toml" in out and '"name": "demo-pack"' in out
