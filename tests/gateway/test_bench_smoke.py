"""CI runs the gateway benchmark in smoke mode: it must work and print its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_real_part
from tests.support.gateway import MOSQUITTO

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_bench_gateway_smoke() -> None:
    require_real_part(Path(MOSQUITTO).exists(), "mosquitto")
    out = subprocess.run(
        [sys.executable, "bench/bench_gateway.py", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    relay = next(ln for ln in lines if ln.startswith("relay (baseline"))
    gateway = next(ln for ln in lines if ln.startswith("gateway (verify"))
    # columns after the 32-character name: ev/s, ev/CPU-s, per-run ev/s
    assert float(relay[32:].split()[0]) > 0 and float(gateway[32:].split()[1]) > 0
    assert "ratio gateway/relay:" in out.stdout
