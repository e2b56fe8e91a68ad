"""CI smoke run of bench/bench_modbus.py: it works and planned reads beat the baseline."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_bench_smoke() -> None:
    result = subprocess.run(
        [sys.executable, "bench/bench_modbus.py", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = dict(
        (m["name"].strip(), int(m["trips"]))
        for m in re.finditer(
            r"^(?P<name>[a-z][a-z -]+?(?:\(baseline\))?)\s+(?P<trips>\d+)\s+[\d.]+\s+[\d.]+$",
            result.stdout,
            re.M,
        )
    )
    assert set(rows) == {"naive per-point (baseline)", "edge-agent planned reads"}, result.stdout
    assert rows["edge-agent planned reads"] * 10 < rows["naive per-point (baseline)"]
    assert "x fewer" in result.stdout
