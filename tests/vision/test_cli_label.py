"""``edge-agent label read`` on a folder and on a missing source (real subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2

from edge_agent.sim.label_render import render_label

ROOT = Path(__file__).resolve().parents[2]
CODE = "001PEA1ABCDEFGF1J0000042"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", "label", "read", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_folder_votes_over_frames(tmp_path: Path) -> None:
    for seed in range(3):
        img = render_label(CODE, "datamatrix", seed=seed, degrade=0.3)
        assert cv2.imwrite(str(tmp_path / f"shot{seed}.png"), img)
    proc = run(str(tmp_path), "--frames", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    reading = json.loads(proc.stdout)
    assert reading["status"] == "ok"
    assert reading["frames"] == 2  # stop_votes=2 reached
    assert reading["codes"][0]["fields"]["battery_type"] == "ncm"
    assert len(reading["photo_sha256"]) == 64


def test_text_output(tmp_path: Path) -> None:
    assert cv2.imwrite(str(tmp_path / "a.png"), render_label(CODE, "qr", seed=1, degrade=0.0))
    proc = run(str(tmp_path / "a.png"))
    assert proc.returncode == 0
    assert "gbt34014" in proc.stdout and CODE in proc.stdout


def test_missing_source_is_a_clean_error(tmp_path: Path) -> None:
    proc = run(str(tmp_path / "nothing.png"))
    assert proc.returncode == 2  # a bad command-line argument, like argparse's own refusals
    assert "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
