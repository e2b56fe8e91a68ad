"""Run a bench/ script in its smoke mode, as CI does, and hand back what it printed."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def run_smoke(script: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python bench/<script> --smoke`` from the repository root; fails on a non-zero exit."""
    out = subprocess.run(
        [sys.executable, f"bench/{script}", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out
