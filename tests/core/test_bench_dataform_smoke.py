"""CI smoke run of bench/bench_dataform.py: it runs, checks both sides agree, prints the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_dataform_smoke(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_dataform.py"), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "baseline = type-walking dataform before compilation" in result.stdout
    rows = json.loads(out.read_text())
    cases = {row["case"] for row in rows}
    assert {"event realistic", "event healthy-lfp", "config defaults"} <= cases
    assert {(row["case"], row["op"]) for row in rows} == {
        (case, op) for case in cases for op in ("to_plain", "from_plain")
    }
    for row in rows:
        assert f"{row['case']:24} {row['op']:10}" in result.stdout
        assert row["ours_us"] > 0 and row["baseline_us"] > 0 and row["speedup"] > 0
        assert row["json_bytes"] > 1000  # timings are not asserted: CI is noisy
    realistic = next(r for r in rows if r["case"] == "event realistic")
    assert realistic["json_bytes"] > 4000  # 108 cell voltages
