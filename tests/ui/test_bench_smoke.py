"""CI runs the kiosk benchmark in smoke mode: it must work and print its table and goals."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, require_real_part
from tests.support.mosquitto import mosquitto_available
from tests.ui.kiosk_bench import require_chromium


@pytest.mark.timeout(300)
def test_bench_kiosk_smoke() -> None:
    require_real_part(mosquitto_available(), "mosquitto broker")
    require_chromium()
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_kiosk.py"), "--smoke"],
        capture_output=True,
        check=False,
        text=True,
        timeout=280,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "baselines: (1) bare EventSource page" in text
    rows = re.findall(r"^\(([123])\) .*?\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)$", text, re.MULTILINE)
    assert [r[0] for r in rows] == ["1", "1", "2", "3", "3", "3", "3"], text
    for _, ours, base, ratio in rows:
        assert float(ours) > 0 and float(base) > 0
        assert abs(float(ours) / float(base) - float(ratio)) < 0.02 * float(ratio) + 0.01
    # one clock at both ends: the card is painted after it entered the DOM, after the result
    parts = re.search(
        r"kiosk, median ms from stored: .* card in the DOM ([0-9.]+), painted ([0-9.]+)", text
    )
    assert parts is not None, text
    assert 0 < float(parts.group(1)) <= float(parts.group(2))
    # the page and its stream cost memory: never less with the UI than without
    rss_on, rss_off = (float(x) for x in rows[3][1:3])
    assert 50 < rss_off <= rss_on + 2.0  # within noise at worst
    for goal in ("result -> card painted under 100 ms", "first paint under 1000 ms", "VmRSS"):
        assert re.search(rf"goal: .*{re.escape(goal)}.*: (met|NOT met)", text), text
