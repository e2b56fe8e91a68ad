"""``edge-agent demo --broker HOST:PORT`` (the README's main-job command) against Mosquitto."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.station.procs import cli_env
from tests.support.mosquitto import MosquittoBroker, mosquitto_broker
from tests.support.nodes import require_micropython

__all__ = ["mosquitto_broker"]


def test_demo_command_publishes_and_verifies_every_pack(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    require_micropython()
    broker = f"{mosquitto_broker.host}:{mosquitto_broker.port}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent",
            "demo",
            "--broker",
            broker,
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=150,
        env=cli_env(),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert len(re.findall(r"backend subscriber: verified \(Ed25519, kid [0-9a-f]{8}", out)) == 5
    for text in ("NORMAL", "DAMAGED/DEFECTIVE", "UNDIAGNOSABLE", "CRITICAL", "Summary"):
        assert text in out, text
    assert "did not settle" not in out and "did not report" not in out
    assert (tmp_path / "data" / "outbox.sqlite3").exists()
