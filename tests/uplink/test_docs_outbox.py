"""The commands shown in docs/outbox.md run and print what the guide says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from edge_agent.uplink.outbox import Outbox
from tests.conftest import ROOT

DOC = ROOT / "docs" / "outbox.md"


def test_documented_outbox_commands_run(tmp_path: Path) -> None:
    commands = re.findall(r"^\$ (edge-agent outbox [^#\n]*)", DOC.read_text(), re.MULTILINE)
    assert len(commands) == 4
    cfg = tmp_path / "edge-agent.toml"
    cfg.write_text(f'[station]\ndata_dir = "{tmp_path}"\n')
    env = {"PYTHONPATH": str(ROOT), "EDGE_AGENT_CONFIG": str(cfg), "PATH": "/usr/bin:/bin"}
    # the agent creates its outbox; the commands only inspect it (a typo creates nothing)
    Outbox(tmp_path / "outbox.sqlite3").close()
    for command in commands:
        args = command.split()[1:]
        out = subprocess.run(
            [sys.executable, "-m", "edge_agent", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            cwd=tmp_path,
            check=False,
        )
        assert out.returncode == 0, (command, out.stderr)
        assert out.stdout.strip(), command
    assert (tmp_path / "outbox.sqlite3").exists()
