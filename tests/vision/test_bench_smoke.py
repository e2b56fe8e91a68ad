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


def test_bench_ocr_rss_smoke(shared_data: Path) -> None:
    """The RSS section starts `edge-agent run` on the field kit and reads a nameplate by OCR."""
    env = {**os.environ, "EDGE_AGENT_SHARED_DATA": str(shared_data)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_label.py"), "--smoke", "--only", "rss"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [ln.split() for ln in proc.stdout.splitlines() if ln.startswith(("ppocr", "rapidocr"))]
    assert [r[:2] for r in rows] == [["rapidocr", "glibc"], ["ppocr", "tuned"]]
    assert all(r[5] == "1/1" for r in rows)  # each run read the plate by OCR
    assert "goal: run VmRSS" in proc.stdout
