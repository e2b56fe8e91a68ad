"""``edge-agent sim node`` and ``edge-agent node ...`` as processes, as a technician runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.nodes import require_micropython

ROOT = Path(__file__).resolve().parents[2]


def agent(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EDGE_AGENT_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture
def sim_proc(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    require_micropython()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_agent",
            "sim",
            "node",
            "--workdir",
            str(tmp_path),
            "--weight",
            "50",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    try:
        assert port == str(tmp_path / "ttyNODE0")
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(10)


def send(proc: subprocess.Popen[str], line: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def test_sim_and_node_commands(sim_proc: tuple[subprocess.Popen[str], str]) -> None:
    proc, port = sim_proc
    out = agent("node", "list", "--port", port)
    assert out.returncode == 0, out.stderr
    (row,) = [json.loads(x) for x in out.stdout.splitlines()]
    assert row["node_id"] == "e66141040327582a" and row["role"] == "scale+sensors"
    assert row["connected"] is True and row["lost"] is False

    out = agent("node", "monitor", "--port", port, "--count", "12")
    msgs = [json.loads(x) for x in out.stdout.splitlines()]
    weights = [m for m in msgs if m["t"] == "w" and m["stable"]]
    assert weights and weights[-1]["net_g"] == 50000

    out = agent("node", "tare", "--port", port)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["result"]["tare_g"] == 50000

    assert send(proc, "weight 20") == "ok"
    assert send(proc, "bogus 1").startswith("error: unknown command")
    out = agent("node", "calibrate", "--port", port, "--span", "-3")
    assert out.returncode == 1 and "refused 'calibrate': span" in out.stderr


def test_node_command_without_ports_is_a_config_error() -> None:
    out = agent("node", "list")
    assert out.returncode == 2 and "nodes.ports" in out.stderr
