"""``edge-agent code parse`` as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", "code", "parse", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def test_valid_code_prints_fields() -> None:
    proc = run("001PEA1ABCDEFGF1J0000042", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["kind"] == "gbt34014"
    assert out["fields"]["battery_type"] == "ncm"
    assert out["fields"]["production_date"] == "2025-01-18"


def test_invalid_code_exits_2_with_position() -> None:
    proc = run("001PEA1ABCDEFGF1J00000X2")
    assert proc.returncode == 2
    err = json.loads(proc.stderr.strip().splitlines()[-1])
    assert err["position"] == 23
    assert "serial character 'X'" in err["error"]


def test_any_text_mode() -> None:
    proc = run("--any", "just a note")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["kind"] == "text"
