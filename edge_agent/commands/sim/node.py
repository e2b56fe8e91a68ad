"""``edge-agent sim node``: the node firmware under the unix port behind a pty.

Prints the port path on the first line, then reads commands on stdin, one per line:
``weight KG``, ``dock 0|1``, ``gas LEVEL``, ``temps C [C ...]``, ``fault hx_dead|ok``,
``unplug``, ``plug``, ``reboot``, ``quit``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import stat
import sys
from pathlib import Path
from typing import Any

from edge_agent.errors import SimulatorError
from edge_agent.sim.node_sim import NodeSimulator, apply_command

__all__ = ["register"]


def register(sub: Any, name: str) -> None:
    """Add ``sim node``."""
    p = sub.add_parser(
        name, help="simulated scale/sensor node (real firmware on the MicroPython unix port)"
    )
    p.add_argument("--role", default="scale+sensors", choices=["scale", "sensors", "scale+sensors"])
    p.add_argument(
        "--weight",
        type=float,
        default=0.0,
        help="load in kg at power-on (power-on zero-setting absorbs loads within 4 %% of Max)",
    )
    p.add_argument("--workdir", type=Path, default=None, help="keep board files and the port here")
    p.add_argument("--uncalibrated", action="store_true", help="start without a calibration")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        sim = NodeSimulator(
            role=args.role,
            workdir=args.workdir,
            calibrated=not args.uncalibrated,
            weight_kg=args.weight,
        )
        async with sim:
            await sim.wait_alive()  # the port is announced only for a firmware that runs
            print(sim.port, flush=True)
            reader = asyncio.StreamReader()
            if _pollable(sys.stdin):
                await loop.connect_read_pipe(
                    lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
                )
            else:  # /dev/null or a file: epoll refuses it; no commands, simulate until a signal
                reader.feed_eof()

            async def commands() -> None:
                while True:
                    line = await reader.readline()
                    if not line:
                        return  # stdin closed: keep simulating until a signal
                    try:
                        if not await apply_command(sim, line.decode()):
                            stop.set()
                            return
                        print("ok", flush=True)
                    except SimulatorError as exc:
                        print(f"error: {exc}", flush=True)

            task = asyncio.create_task(commands())
            failed = asyncio.create_task(sim.failed.wait())
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({failed, stopped}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (task, failed, stopped):
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
            if sim.failed.is_set():
                print(
                    f"error: node firmware crash-loops ({len(sim.exits)} exits); see the log",
                    file=sys.stderr,
                )
                return 1
        return 0

    return asyncio.run(main())


def _pollable(stream: Any) -> bool:
    """True for a pipe, socket or terminal (what the event loop can watch)."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(stream.fileno())
