"""Registry: lookup by role, liveness from received lines, lost after silence, back after replug."""

from __future__ import annotations

import asyncio

import pytest

from edge_agent.errors import NodeError
from edge_agent.nodes.registry import NodeRegistry
from edge_agent.nodes.readings import read_weight
from edge_agent.sim.node_sim import NodeSimulator
from tests.support.nodes import require_micropython, wait_for


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
