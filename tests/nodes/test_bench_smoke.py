"""CI smoke run of bench/bench_node.py: it runs end to end and prints its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.nodes import require_micropython

ROOT = Path(__file__).resolve().parents[2]


def test_bench_node_smoke() -> None:
    require_micropython()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_node.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:2] == ["metric", "median"]
    names = [line[:38].strip() for line in lines[1:]]
    assert names == [
        "weight step -> stable at agent (ms)",
        "same, vs filter model floor (ms)",
        "node messages/s parsed at agent",
        "node heap in use after gc (bytes)",
    ]
    latency_ms = float(lines[1].split()[7])
    assert 100 < latency_ms < 5000  # bounded below by the 13-sample filter at 80 SPS
