"""CI check that ``bench/bench_station.py --smoke`` runs and prints its table."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT, require_real_part
from tests.support.mosquitto import mosquitto_available


def test_bench_station_smoke() -> None:
    require_real_part(mosquitto_available(), "mosquitto broker")
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_station.py"), "--smoke"],
        capture_output=True,
        check=False,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "baseline = raw paho QoS 1 of the same bytes" in text
    rows = re.findall(r"^\((1|2)\) .*?\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)$", text, re.MULTILINE)
    assert len(rows) == 4, text
    for _, ours, raw, ratio in rows:
        assert float(ours) > 0 and float(raw) > 0
        assert abs(float(ours) / float(raw) - float(ratio)) < 0.02 * float(ratio) + 0.01
    # the overhead includes the commit, which includes the CPU work: the parts are ordered
    to_ack = float(rows[0][1])
    commit = float(re.search(r"outbox commit .*: median ([0-9.]+) ms", text).group(1))  # type: ignore[union-attr]
    cpu = float(re.search(r"sign alone .*: median ([0-9.]+) ms", text).group(1))  # type: ignore[union-attr]
    assert 0 < cpu <= commit <= to_ack
    assert re.search(r"goal: median last reading -> PUBACK under 20 ms: (met|NOT met)", text)
