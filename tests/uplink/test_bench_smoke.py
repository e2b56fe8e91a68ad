"""CI check that ``bench/bench_uplink.py --smoke`` runs and prints its table."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT, require_real_part
from tests.support.mosquitto import mosquitto_available


def test_bench_uplink_smoke() -> None:
    require_real_part(mosquitto_available(), "mosquitto broker")
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_uplink.py"), "--smoke"],
        capture_output=True,
        check=False,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "baseline = raw paho QoS 1" in text
    ratios = re.findall(r"^\(a\) msg/s.*\s([0-9.]+)$", text, re.MULTILINE)
    assert len(ratios) == 3 and all(float(r) > 0 for r in ratios)
    backlog = re.search(r"\(b\) backlog of (\d+) events: .* = (\d+) msg/s", text)
    assert backlog and int(backlog.group(1)) == 2000 and int(backlog.group(2)) > 0
    assert re.search(r"\(c\) add->PUBACK median ms", text)
