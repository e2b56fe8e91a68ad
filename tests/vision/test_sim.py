"""Label simulator: deterministic, decodable when clean, degraded when asked, CLI folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_agent.codes import parse_pack_code
from edge_agent.errors import SimulatorError
from edge_agent.sim.label_render import SYMBOLOGIES, random_pack_code, render_label
from edge_agent.vision.decode import decode_gray, to_gray

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("symbology", list(SYMBOLOGIES))
def test_clean_label_decodes_in_first_pass(symbology: str) -> None:
    code = random_pack_code(np.random.default_rng(3))
    parse_pack_code(code)  # the generator only makes valid codes
    result = decode_gray(to_gray(render_label(code, symbology, seed=3, degrade=0.0)))
    assert [(s.text, s.decode_pass) for s in result.symbols] == [(code, "plain")]


def test_render_is_deterministic_and_degrade_changes_it() -> None:
    code = "001PBS1ABCDEFGA3A0000123"
    a = render_label(code, "qr", seed=5, degrade=0.6)
    assert np.array_equal(a, render_label(code, "qr", seed=5, degrade=0.6))
    assert not np.array_equal(a, render_label(code, "qr", seed=6, degrade=0.6))
    clean = render_label(code, "qr", seed=5, degrade=0.0)
    assert a.shape != clean.shape or not np.array_equal(a, clean)


def test_bad_arguments() -> None:
    with pytest.raises(SimulatorError):
        render_label("X", "pdf417", seed=1, degrade=0.1)
    with pytest.raises(SimulatorError):
        render_label("X", "qr", seed=1, degrade=1.5)


def test_cli_writes_folder_the_camera_reads(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "labels"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent",
            "sim",
            "label",
            "--out",
            str(out),
            "--count",
            "3",
            "--seed",
            "4",
            "--degrade",
            "0.2",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [m["symbology"] for m in manifest] == ["qr", "datamatrix", "code128"]
    read = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent",
            "label",
            "read",
            str(out / manifest[2]["file"]),
            "--json",
            "--photo",
            str(tmp_path / "ev.jpg"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert read.returncode == 0, read.stderr
    reading = json.loads(read.stdout)
    assert reading["status"] == "ok"
    assert reading["codes"][0]["text"] == manifest[2]["code"]
    assert reading["codes"][0]["symbology"] == "Code128"
    assert (tmp_path / "ev.jpg").read_bytes()[:2] == b"\xff\xd8"
