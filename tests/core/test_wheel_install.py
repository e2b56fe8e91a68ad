"""A plain `pip install <wheel>[sim]` in a fresh venv runs `demo` with the gas alarm and
`sim bench` with a live node (issue 15: the wheel lacked the firmware, so the node simulator
crash-looped while `sim bench` said ready, and the gassing pack ended as merely damaged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(900)


def _env() -> dict[str, str]:
    # nothing from this tree on the path: only what the wheel installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop("EDGE_AGENT_CONFIG", None)
    return {**env, "COLUMNS": "120"}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(base / "dist"),
         str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    [wheel] = (base / "dist").glob("edge_agent-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin/pip"), "install", "--quiet", f"{wheel}[sim]"],
        check=True, capture_output=True, timeout=600, env=_env(),
    )  # fmt: skip
    return venv


def test_wheel_carries_license_and_firmware(venv: Path) -> None:
    site = next((venv / "lib").glob("python3*/site-packages"))
    [dist] = site.glob("edge_agent-*.dist-info")
    assert "Apache License" in (dist / "licenses" / "LICENSE").read_text()
    assert (venv / "share/edge-agent/firmware/app/main.py").is_file()
    assert not (site / "edge_agent" / "__init__.py").resolve().is_relative_to(ROOT)


def test_demo_from_the_wheel_raises_the_gas_alarm(venv: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(venv / "bin/edge-agent"), "demo", "--workdir", str(tmp_path / "w")],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path, env=_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "scale node simulator unavailable" not in out
    assert "gas/VOC sensor alarm" in out and "CRITICAL" in out


def test_sim_bench_from_the_wheel_has_a_live_node(venv: Path, tmp_path: Path) -> None:
    config = tmp_path / "fk.toml"
    bench = subprocess.Popen(
        [str(venv / "bin/edge-agent"), "sim", "bench", "--config-out", str(config),
         "--workdir", str(tmp_path / "fk")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path, env=_env(),
    )  # fmt: skip
    try:
        assert bench.stdout is not None
        deadline = time.monotonic() + 120
        lines = []
        while time.monotonic() < deadline:
            line = bench.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("field kit ready"):
                break
        assert lines and lines[-1].startswith("field kit ready"), "".join(lines)
        selftest = subprocess.run(
            [str(venv / "bin/edge-agent"), "--config", str(config), "selftest", "--only", "nodes",
             "--json"],
            capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path, env=_env(),
        )  # fmt: skip
        [nodes] = json.loads(selftest.stdout)["checks"]
        assert nodes["verdict"] == "PASS", nodes
        assert bench.poll() is None  # still running: nothing crashed
        log = (tmp_path / "fk/logs/node.log").read_text()
        assert "rebooting" not in log and "crash-loops" not in log
    finally:
        bench.terminate()
        bench.wait(30)
