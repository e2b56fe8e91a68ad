"""CI runs the CAN benchmark in smoke mode: it must work and beat its baseline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_bench_can_smoke(shared_data):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_can.py"),
            "--smoke",
            "--data",
            str(shared_data),
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "naive cantools decode_message (baseline)" in result.stdout
    ours = next(
        line for line in result.stdout.splitlines() if line.startswith("profile decoder (ours)")
    )
    assert float(ours.split()[-1].rstrip("x")) > 1.0
