"""CI smoke run of the token rows of bench/bench_signing.py (SoftHSM2 and swtpm)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, require_real_part
from tests.support.tokens import SOFTHSM_MODULES, first_existing, swtpm_available


def test_token_rows_run_against_the_software_key(tmp_path: Path) -> None:
    require_real_part(first_existing(SOFTHSM_MODULES) is not None, "SoftHSM2")
    require_real_part(swtpm_available(), "swtpm + tpm2-pkcs11 + pkcs11-tool")
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_signing.py"), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "NOT hardware figures" in done.stdout
    rows = {r["alg"]: r for r in json.loads(out.read_text()) if r["op"] == "token envelope sign"}
    assert set(rows) == {"softhsm2", "swtpm"}
    for row in rows.values():
        assert row["ours_per_s"] > 0 and row["raw_per_s"] > 0 and row["ratio"] > 0
        assert f"{row['alg']:8} token envelope sign" in done.stdout
