"""pyright checks the firmware against each port's MicroPython stubs (one typings dir per port).

Install (see firmware/README.md): ``pip install pyright`` and
``pip install micropython-<port>-stubs --no-user --target firmware/typings/<port>``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from firmware.tests.conftest import APP, FIRMWARE, find_tool, require


@pytest.mark.parametrize("port", ["rp2", "esp32"])
def test_pyright_clean_against_port_stubs(port: str, tmp_path: Path) -> None:
    exe = find_tool("pyright")
    require(exe is not None, "pyright (pip install pyright)")
    typings = FIRMWARE / "typings" / port
    require(
        (typings / "machine").exists() or (typings / "machine.pyi").exists(),
        f"micropython-{port}-stubs in {typings}",
    )
    assert exe is not None
    cfg = tmp_path / "pyrightconfig.json"
    cfg.write_text(
        json.dumps(
            {
                "include": [str(APP)],
                "stubPath": str(typings),
                "extraPaths": [str(APP)],
                "typeCheckingMode": "basic",
                "reportMissingModuleSource": "none",
                "pythonVersion": "3.11",
            }
        )
    )
    files = [str(p) for p in sorted(APP.glob("*.py"))]
    proc = subprocess.run(
        [exe, "-p", str(cfg), "--outputjson", *files], capture_output=True, text=True, timeout=240
    )
    report = json.loads(proc.stdout)
    errors = [
        f"{d['file'].split('/')[-1]}:{d['range']['start']['line'] + 1}: {d['message']}"
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]
    assert errors == [], "\n".join(errors)
    assert report["summary"]["filesAnalyzed"] >= 9
