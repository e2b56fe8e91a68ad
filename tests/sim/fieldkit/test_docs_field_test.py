"""docs/field-test.md: every ``$`` command of its ``console`` blocks runs, in order, and works."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fieldkit import ROOT, agent_env

DOC = ROOT / "docs" / "field-test.md"
BLOCK = re.compile(r"```console\n(.*?)```", re.S)

pytestmark = pytest.mark.timeout(240)


def doc_commands(text: str) -> list[str]:
    """The ``$ `` lines of every console block, in document order."""
    return [
        line[2:]
        for block in BLOCK.findall(text)
        for line in block.splitlines()
        if line.startswith("$ ")
    ]


def _stop_leftover_kits(work: Path) -> None:
    """A failing doc command leaves its background field kit running: stop it by its own pid."""
    for state in work.glob("*/fieldkit.json"):
        pid = json.loads(state.read_text())["pid"]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def test_doc_has_the_whole_flow() -> None:
    commands = doc_commands(DOC.read_text(encoding="utf-8"))
    joined = "\n".join(commands)
    for needed in (
        "sim fieldkit",
        "selftest",
        "identify",
        "bms capture",
        "bms replay",
        "--replay-can",
    ):
        assert needed in joined
    assert len(commands) >= 12


def test_doc_commands_run(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "edge-agent"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m edge_agent "$@"\n')
    wrapper.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    script = "set -euo pipefail\n" + "\n".join(doc_commands(DOC.read_text(encoding="utf-8")))
    env = agent_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"
    try:
        out = subprocess.run(
            ["bash", "-c", script],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=200,
            check=False,
        )
    finally:
        _stop_leftover_kits(work)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    assert text.count("OK: every required check passed") == 2, text[-4000:]
    assert text.count("field kit stopped") == 2
    assert "reading status ok" in text
    # the live identification and the replayed one: the last JSON line is the replay's event
    replayed = json.loads(
        next(ln for ln in reversed(out.stdout.splitlines()) if ln.startswith('{"published"'))
    )
    assert replayed["published"] is True
    bms = replayed["event"]["readings"]["bms"]
    assert bms["status"] == "ok" and bms["identity"]["vin"]["value"] == "LSVAU2180N2183294"
    manifest = json.loads((work / "session" / "label" / "manifest.json").read_text())
    assert replayed["event"]["pack"]["pack_code"] == manifest[0]["code"]
    capture = (work / "session" / "can.log").read_text().splitlines()
    assert len(capture) > 10 and all(ln.startswith("(") for ln in capture)
    # both field kits were stopped by the doc's `kill %1`: nothing left running
    for name in ("fieldkit", "replay"):
        for part in json.loads((work / name / "fieldkit.json").read_text())["parts"]:
            if part["pid"]:
                assert not Path(f"/proc/{part['pid']}").exists()
