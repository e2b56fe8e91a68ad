"""CI runs the hardware benchmark in smoke mode: it must work and print both ratios."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_hardware.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = re.findall(
        r"^(selftest pass|sd_notify WATCHDOG=1).*?(\d+\.\d+)\s+\S", done.stdout, re.MULTILINE
    )
    assert [r[0] for r in rows] == ["selftest pass", "sd_notify WATCHDOG=1"], done.stdout
    assert all(float(r[1]) > 0 for r in rows)
