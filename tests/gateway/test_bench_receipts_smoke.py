"""CI runs the receipts benchmark in smoke mode: it must work and print both tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_real_part
from tests.support.gateway import MOSQUITTO

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_bench_receipts_smoke() -> None:
    require_real_part(Path(MOSQUITTO).exists(), "mosquitto")
    out = subprocess.run(
        [sys.executable, "bench/bench_receipts.py", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    receipt = next(ln for ln in lines if ln.startswith("last reading -> receipt applied"))
    baseline = next(ln for ln in lines if ln.startswith("last reading -> PUBACK (baseline)"))
    assert float(receipt[40:].split()[0]) > 0 and float(baseline[40:].split()[0]) > 0
    assert "ratio receipt/PUBACK:" in out.stdout and "ratio receipts on/off:" in out.stdout
