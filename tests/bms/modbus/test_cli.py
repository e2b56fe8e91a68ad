"""The documented commands, run as processes: ``sim bms-modbus`` and ``bms read --modbus``."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import require_real_part
from tests.support.bms_modbus import pty_available

ROOT = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def simulator(*args: str) -> Iterator[str]:
    """Run ``edge-agent sim bms-modbus ARGS`` and yield the URL it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "sim", "bms-modbus", *args],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout=30), "simulator printed nothing"
        url = proc.stdout.readline().strip()
        assert url.startswith(("tcp://", "rtu://")), url
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


def test_sunspec_simulator_and_bms_read_over_tcp() -> None:
    with simulator(
        "--kind",
        "sunspec",
        "--tcp",
        "127.0.0.1:0",
        "--strings",
        "2",
        "--modules",
        "2",
        "--cells",
        "3",
        "--serial",
        "CLI-SN-1",
    ) as url:
        result = _cli("bms", "read", "--modbus", url, "--device-id", "1", "--timeout", "10")
    assert result.returncode == 0, result.stderr
    reading = json.loads(result.stdout)
    assert reading["status"] == "ok"
    assert reading["profile"] == "sunspec-battery"
    assert reading["identity"]["device"]["serial"] == {
        "value": "CLI-SN-1",
        "unit": "",
        "method": "sunspec:1.SN",
    }
    assert reading["state"]["soc"] == {"value": 87.5, "unit": "%", "method": "sunspec:802.SoC"}
    assert len(reading["state"]["cell_voltages"]) == 12


def test_regmap_simulator_over_rtu_pty() -> None:
    require_real_part(pty_available(), "pty pairs")
    with simulator("--kind", "regmap", "--rtu-pty", "--baud", "9600") as url:
        assert url.endswith("?baud=9600")
        result = _cli("bms", "read", "--modbus", url, "--profile", "byd-batterybox")
    assert result.returncode == 0, result.stderr
    reading = json.loads(result.stdout)
    assert reading["identity"]["manufacturer"]["value"] == "BYD"
    assert reading["state"]["pack_voltage"] == {
        "value": 409.6,
        "unit": "V",
        "method": "regmap:pack_voltage",
    }


def test_faulty_simulator_gives_partial_reading_and_exit_1() -> None:
    with simulator("--tcp", "127.0.0.1:0", "--fault", "illegal_address@40300") as url:
        result = _cli("bms", "read", "--modbus", url, "--request-timeout", "0.5", "--retries", "0")
    assert result.returncode == 1
    reading = json.loads(result.stdout)
    assert reading["status"] == "partial"
    assert any("illegal data address" in p for p in reading["problems"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bms", "read", "--modbus", "udp://x:1"], "must start with tcp:// or rtu://"),
        (["bms", "read", "--modbus", "rtu:///dev/null?speed=9600"], "unknown serial option"),
        (["bms", "read", "--modbus", "tcp://h:1", "--device-id", "300"], "bms.modbus.device_id"),
        (["bms", "read", "--modbus", "tcp://h:1", "--profile", "nope"], "unknown pack profile"),
        (["sim", "bms-modbus", "--tcp", "127.0.0.1:0", "--fault", "gremlins"], "bad --fault"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args: list[str], message: str) -> None:
    result = _cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
