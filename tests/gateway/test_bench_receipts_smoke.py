"""CI runs the receipts benchmark in smoke mode: it must work and print both tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_real_part
from tests.support.bench import run_smoke
from tests.support.gateway import MOSQUITTO


@pytest.mark.timeout(300)
def test_bench_receipts_smoke() -> None:
    require_real_part(Path(MOSQUITTO).exists(), "mosquitto")
    out = run_smoke("bench_receipts.py", timeout=280)
    lines = out.stdout.splitlines()
    receipt = next(ln for ln in lines if ln.startswith("last reading -> receipt applied"))
    baseline = next(ln for ln in lines if ln.startswith("last reading -> PUBACK (baseline)"))
    assert float(receipt[40:].split()[0]) > 0 and float(baseline[40:].split()[0]) > 0
    assert "ratio receipt/PUBACK:" in out.stdout and "ratio receipts on/off:" in out.stdout
