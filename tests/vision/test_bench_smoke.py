"""CI smoke run of bench/bench_label.py (checks it works and prints its table, not timings)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke(shared_data: Path) -> None:
    env = {**os.environ, "EDGE_AGENT_SHARED_DATA": str(shared_data)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_label.py"), "--smoke"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in (
        "ours (multi-pass)",
        "zxing-cpp 1-pass (baseline)",
        "cv2.QRCodeDetector",
        "pyzbar",
        "falsepos",
        "simulated labels",
    ):
        assert needle in out
    assert "ours (multi-pass)               3/3" in out  # smoke images all decode
