"""CI runs the field kit benchmark in smoke mode: it must work and print both rows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(300)
def test_bench_smoke() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_fieldkit.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = re.findall(
        r"^(field kit start-up|node probe \(nodes\+scale\))\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)",
        done.stdout,
        re.MULTILINE,
    )
    assert [r[0] for r in rows] == ["field kit start-up", "node probe (nodes+scale)"], done.stdout
    for _, ours, base, ratio in rows:
        assert float(ours) > 0 and float(base) > 0
        assert float(ratio) == pytest.approx(float(ours) / float(base), rel=0.05, abs=0.01)
