"""Registry: lookup by role, liveness from received lines, lost after silence, back after replug."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge_agent.errors import NodeError, NodeTimeoutError
from edge_agent.nodes.link import SerialNodeLink
from edge_agent.nodes.readings import read_weight
from edge_agent.nodes.registry import NodeRegistry
from edge_agent.sim.node_sim import NodeSimulator
from tests.support.nodes import require_micropython, wait_for, with_node


def test_registry_marks_a_silent_node_lost_and_recovers() -> None:
    require_micropython()

    async def main() -> None:
        async with NodeSimulator(role="scale", weight_kg=80.0) as sim:
            reg = await NodeRegistry.open([sim.port], hello_timeout_s=10)
            reg.lost_after_s = 0.6
            async with reg:
                (row,) = reg.status()
                assert (row.role, row.connected, row.lost) == ("scale", True, False)
                link = reg.find("scale")
                with pytest.raises(NodeError, match="sensors"):
                    reg.find("sensors")
                r = await read_weight(reg, timeout=10)
                assert r.mass_kg == pytest.approx(80.0, abs=0.05) and r.node_id == link.node_id
                sim.unplug()
                await wait_for(lambda: reg.status()[0].lost, timeout=10)
                with pytest.raises(NodeError):
                    reg.find("scale")
                await asyncio.sleep(0.2)
                sim.plug()
                await wait_for(lambda: not reg.status()[0].lost, timeout=10)
                assert reg.find("scale") is link and link.stats["reconnects"] == 1

    asyncio.run(main())


def test_missing_port_times_out_with_a_typed_error_and_no_leftover_task(tmp_path: Path) -> None:
    async def main() -> None:
        link = SerialNodeLink(str(tmp_path / "ttyNONE*"), hello_timeout_s=0.3)
        with pytest.raises(NodeTimeoutError, match="no hello"):
            await link.start()
        assert link._task is not None and link._task.done()
        with pytest.raises(NodeTimeoutError):
            await NodeRegistry.open([str(tmp_path / "nothing")], hello_timeout_s=0.2)
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(main())


def test_refused_node_config_is_reported() -> None:
    async def body(sim: NodeSimulator, link: SerialNodeLink) -> None:
        await wait_for(lambda: "refused node_config" in link.last_error)
        assert "unknown:no_such_key" in link.last_error

    with_node(body, link_kwargs={"node_config": {"no_such_key": 1}})
