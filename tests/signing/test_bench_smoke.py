"""CI smoke run of bench/bench_signing.py: it runs, prints the table and sane numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.signing import ROOT


def test_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_signing.py"), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "baseline = raw cryptography sign/verify" in result.stdout
    rows = json.loads(out.read_text())
    ops = {(r["alg"], r["op"]) for r in rows}
    for alg in ("ed25519", "p256"):
        for op in (
            "envelope sign",
            "envelope verify",
            "envelope sign+verify",
            "event sign",
            "event verify",
        ):
            assert (alg, op) in ops
            assert f"{alg:8} {op:22}" in result.stdout
    for row in rows:
        assert row["ours_per_s"] > 0 and row["raw_per_s"] > 0
        assert row["ratio"] > 0 and row["best_ratio"] > 0  # timings are not asserted: CI is noisy
        assert row["message_bytes"] > row["payload_bytes"] > 1000
