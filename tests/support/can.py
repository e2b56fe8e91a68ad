"""Fixtures and helpers for the CAN BMS tests (virtual buses, pty null modems, sim processes)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge_agent.bms import read_bms
from edge_agent.bms.profile import PackProfile, load_profile
from edge_agent.bms.settings import BmsSettings, CanSettings
from edge_agent.model import BmsReading
from edge_agent.sim.can_pty import PtyNullModem

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(name="channel")
def channel_fixture() -> str:
    """A virtual-bus channel name no other test uses."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture(name="modem")
def modem_fixture() -> Iterator[PtyNullModem]:
    """A started pty null modem (a_path for the agent, b_path for the simulator process)."""
    with PtyNullModem() as link:
        yield link


def virtual(channel: str) -> CanSettings:
    """CanSettings of an in-process virtual bus."""
    return CanSettings(interface="virtual", channel=channel)


def slcan(path: str) -> CanSettings:
    """CanSettings of an slcan link over a pty."""
    return CanSettings(interface="slcan", channel=path, open_delay_s=0.0)


def read(profile: PackProfile | str, can: CanSettings, timeout: float = 8.0) -> BmsReading:
    """Run read_bms to completion."""
    if isinstance(profile, str):
        profile = load_profile(profile)
    return asyncio.run(read_bms(profile, BmsSettings(can=can), timeout))


@contextmanager
def sim_process(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``edge-agent sim bms-can ARGS`` as a separate process, ready when it says so."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "sim", "bms-can", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready"):
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise AssertionError(f"simulator did not start: {line!r} {err}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def value(v: object) -> tuple[object, str, str]:
    """(value, unit, method) of a model Value, for compact asserts."""
    assert v is not None, "value missing"
    return (v.value, v.unit, v.method)  # type: ignore[attr-defined]
