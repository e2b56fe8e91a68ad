"""CI runs the gateway benchmark in smoke mode: it must work and print its table."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_real_part
from tests.support.bench import run_smoke
from tests.support.gateway import MOSQUITTO


@pytest.mark.timeout(240)
def test_bench_gateway_smoke() -> None:
    require_real_part(Path(MOSQUITTO).exists(), "mosquitto")
    out = run_smoke("bench_gateway.py", timeout=220)
    lines = out.stdout.splitlines()
    relay = next(ln for ln in lines if ln.startswith("relay (baseline"))
    gateway = next(ln for ln in lines if ln.startswith("gateway (verify"))
    # columns after the 32-character name: ev/s, ev/CPU-s, per-run ev/s
    assert float(relay[32:].split()[0]) > 0 and float(gateway[32:].split()[1]) > 0
    assert "ratio gateway/relay:" in out.stdout
