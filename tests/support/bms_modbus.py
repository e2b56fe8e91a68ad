"""Fixtures for the Modbus BMS tests: simulators on loopback TCP and on RTU pty pairs."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, Literal, TypeVar

from edge_agent.bms.settings import ModbusSettings
from edge_agent.sim.modbus_server import Fault, ModbusDeviceSim
from edge_agent.sim.modbus_sunspec import SunSpecBattery, sunspec_device

T = TypeVar("T")
Transport = Literal["tcp", "rtu"]
TRANSPORTS: tuple[Transport, ...] = ("tcp", "rtu")


def run(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    """Run a coroutine in a fresh loop with an upper bound so a hang fails instead of blocking."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def pty_available() -> bool:
    """True when this machine can create pty pairs."""
    try:
        master, slave = os.openpty()
    except OSError:
        return False
    os.close(master)
    os.close(slave)
    return True


async def start(sim: ModbusDeviceSim, transport: Transport) -> str:
    """Start ``sim`` on loopback TCP or an RTU pty pair and return the client URL."""
    if transport == "tcp":
        port = await sim.start_tcp()
        return f"tcp://127.0.0.1:{port}"
    path = await sim.start_rtu_pty(19200)
    return f"rtu://{path}?baud=19200"


@contextlib.asynccontextmanager
async def served(sim: ModbusDeviceSim, transport: Transport = "tcp") -> AsyncIterator[str]:
    """Serve ``sim`` for the duration of the block; yields the URL."""
    async with sim:
        yield await start(sim, transport)


@contextlib.asynccontextmanager
async def sunspec_served(
    battery: SunSpecBattery | None = None,
    transport: Transport = "tcp",
    faults: Sequence[Fault] = (),
) -> AsyncIterator[tuple[ModbusDeviceSim, str]]:
    """A SunSpec battery simulator; yields (simulator, url)."""
    sim = sunspec_device(battery, faults=faults)
    async with served(sim, transport) as url:
        yield sim, url


def settings(url: str, **kw: Any) -> ModbusSettings:
    """Modbus settings for tests: short timeouts so fault tests stay fast."""
    values: dict[str, Any] = {"url": url, "timeout_s": 0.5, "retries": 1}
    values.update(kw)
    return ModbusSettings(**values)
