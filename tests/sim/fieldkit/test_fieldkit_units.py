"""Units of the field kit: the scale verdicts, option validation, the hidden ``sim bench`` alias,
and the node checks against the real firmware with a load left on the scale."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.cli import main
from edge_agent.config import config_from_plain
from edge_agent.errors import SimulatorError
from edge_agent.model import WeightReading
from edge_agent.selftest import CheckContext, Verdict, run_selftest
from edge_agent.selftest.checks.scale import TARE_STEP, scale_outcome
from edge_agent.sim.fieldkit import FieldKit, FieldKitSpec, broker_address
from edge_agent.sim.fieldkit_dock import ControlFifo, node_commands
from tests.support.nodes import require_micropython


def _weight(kg: float | None, **kw: Any) -> WeightReading:
    base: dict[str, Any] = {"status": "ok", "mass_kg": kg, "stable": True, "division_kg": 0.05}
    return WeightReading(**{**base, **kw})


CONFIG = config_from_plain({})  # dock threshold 2 kg


@pytest.mark.parametrize(
    ("reading", "verdict", "words"),
    [
        (_weight(0.0), Verdict.PASS, "stable at 0.000 kg (e = 50 g)"),
        (_weight(0.05), Verdict.PASS, "stable at 0.050 kg"),
        (_weight(0.5), Verdict.WARN, "more than 2 e off zero"),
        (_weight(-0.5), Verdict.WARN, "-0.500 kg"),
        (_weight(3.0), Verdict.FAIL, "with nothing docked"),
        (
            _weight(0.0, stable=False, status="partial", problems=("scale not stable",)),
            Verdict.WARN,
            "not stable",
        ),
        (
            _weight(None, status="failed", stable=False, problems=("scale fault: hx_dead",)),
            Verdict.FAIL,
            "hx_dead",
        ),
        (
            _weight(0.0, status="partial", problems=("scale not calibrated",)),
            Verdict.WARN,
            "not calibrated",
        ),
    ],
)
def test_scale_verdicts(reading: WeightReading, verdict: Verdict, words: str) -> None:
    out = scale_outcome(reading, CONFIG)
    assert out.verdict is verdict and words in out.detail
    if abs(reading.mass_kg or 0.0) > 0.1 and reading.stable:
        assert out.next_step == TARE_STEP
    if verdict is not Verdict.PASS:
        assert out.next_step


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"broker": "nohost"}, "HOST:PORT"),
        ({"broker": "127.0.0.1:99999"}, "HOST:PORT"),
        ({"replay_can": Path("/nonexistent/can.log")}, "CAN recording not found"),
        ({"replay_can": Path(__file__), "bms": "sunspec"}, "needs a CAN BMS"),
        ({"labels": Path("/nonexistent/labels")}, "label photo folder not found"),
        ({"bms": "j1939"}, "unknown --bms"),
    ],
)
def test_fieldkit_refuses_bad_options_before_starting(
    tmp_path: Path, changes: dict[str, Any], words: str
) -> None:
    spec = FieldKitSpec(workdir=tmp_path / "w", config_out=tmp_path / "a.toml", **changes)
    with pytest.raises(SimulatorError, match=words):
        FieldKit(spec).start()
    assert not (tmp_path / "a.toml").exists() and not (tmp_path / "w" / "logs").exists()


def test_broker_address() -> None:
    assert broker_address("broker.example:8883") == ("broker.example", 8883)
    assert broker_address("[::1]:1883") == ("[::1]", 1883)


@pytest.mark.parametrize("command", ["fieldkit", "bench"])
def test_cli_bad_option_exits_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """``sim fieldkit`` and its hidden old name ``sim bench`` take the same options."""
    rc = main(["sim", command, "--config-out", str(tmp_path / "a.toml"), "--broker", "x"])
    assert rc != 0
    assert "HOST:PORT" in capsys.readouterr().err


def test_bench_alias_is_not_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sim", "--help"])
    listing = capsys.readouterr().out
    assert "fieldkit" in listing and "bench" not in listing


def test_scale_left_loaded_fails_with_tare_step(tmp_path: Path) -> None:
    """The real firmware under MicroPython: zero passes, 3 kg on the platform fails."""
    require_micropython()
    from edge_agent.sim.node_sim import NodeSimulator

    async def body() -> tuple[Any, Any]:
        async with NodeSimulator(role="scale+sensors", workdir=tmp_path / "node") as sim:
            config = config_from_plain(
                {"nodes": {"ports": [sim.port], "hello_timeout_s": 5.0, "stable_timeout_s": 6.0}}
            )
            only = ["nodes", "scale"]
            empty = await asyncio.to_thread(run_selftest, CheckContext(config=config), only=only)
            sim.set_weight_kg(3.0)
            loaded = await asyncio.to_thread(run_selftest, CheckContext(config=config), only=only)
            return empty, loaded

    empty, loaded = asyncio.run(body())
    assert empty.exit_code == 0
    assert [r.verdict for r in empty.results] == [Verdict.PASS, Verdict.PASS]
    assert loaded.result("nodes").verdict is Verdict.PASS
    scale = loaded.result("scale")
    assert scale.verdict is Verdict.FAIL and scale.next_step == TARE_STEP, scale
    assert "3.000 kg" in scale.detail and loaded.exit_code == 1


@pytest.mark.parametrize(
    ("line", "commands"),
    [
        ("dock", ["weight 455", "dock 1"]),
        ("dock 12.5", ["weight 12.5", "dock 1"]),
        ("undock", ["dock 0", "weight 0"]),
        ("  gas   0.4 ", ["gas 0.4"]),
        ("", []),
    ],
)
def test_control_lines(line: str, commands: list[str]) -> None:
    assert node_commands(line) == commands


@pytest.mark.parametrize("line", ["dock heavy", "dock -1", "dock 9999", "x" * 300, "dock\x07"])
def test_bad_control_lines_are_refused(line: str) -> None:
    with pytest.raises(SimulatorError):
        node_commands(line)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=250))
def test_control_lines_never_crash(line: str) -> None:
    try:
        out = node_commands(line)
    except SimulatorError:
        return
    assert all(cmd and "\n" not in cmd for cmd in out)


def test_control_fifo_delivers_lines_and_survives_garbage(tmp_path: Path) -> None:
    got: list[str] = []
    done = threading.Event()

    def handle(text: str) -> None:
        if text == "refuse":
            raise SimulatorError("no")
        got.append(text)
        if text == "last":
            done.set()

    fifo = ControlFifo(tmp_path / "control", handle)
    try:
        for chunk in ("dock\n", "refuse\n", "\xff\xfe garbage\n", "und", "ock\n", "last\n"):
            with open(tmp_path / "control", "w", encoding="utf-8") as pipe:
                pipe.write(chunk)
        assert done.wait(10)
    finally:
        fifo.close()
    assert got == ["dock", "\xff\xfe garbage", "undock", "last"]
    assert not (tmp_path / "control").exists()
