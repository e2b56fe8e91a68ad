"""``edge-agent sim bms-modbus``: run the SunSpec battery or register-map simulator as a process.

It prints one line with the URL to read it at (``tcp://HOST:PORT`` or ``rtu:///dev/pts/N``),
then serves until interrupted (SIGINT/SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
from typing import TYPE_CHECKING, Any

from edge_agent.errors import ConfigError

if TYPE_CHECKING:
    from edge_agent.sim.modbus_server import Fault, ModbusDeviceSim

__all__ = ["build_device", "parse_fault", "register"]

FAULT_RE = re.compile(
    r"(?P<kind>[a-z_]+)(?:@(?P<address>\d+))?(?:x(?P<times>-?\d+))?(?:\+(?P<after>\d+))?"
)


def parse_fault(text: str) -> Fault:
    """``KIND[@ADDRESS][xTIMES][+AFTER]``, e.g. ``busy@40070x2`` or ``disconnect+5``."""
    # the simulator (pymodbus' server, which loads aiohttp) only when a simulator runs: every
    # edge-agent command registers this one, and `run` should not carry it
    from edge_agent.sim.modbus_server import EXCEPTIONS, Fault

    kinds = (*EXCEPTIONS, "no_answer", "crc", "disconnect")
    match = FAULT_RE.fullmatch(text)
    if not match or match["kind"] not in kinds:
        raise ConfigError(
            f"bad --fault {text!r}: use KIND[@ADDR][xTIMES][+AFTER], KIND one of {', '.join(kinds)}"
        )
    return Fault(
        kind=match["kind"],  # type: ignore[arg-type]
        address=int(match["address"]) if match["address"] else None,
        times=int(match["times"]) if match["times"] else -1,
        after=int(match["after"]) if match["after"] else 0,
    )


def register(sub: Any, name: str) -> None:
    """Add ``sim bms-modbus``."""
    p = sub.add_parser(name, help="simulated Modbus BMS (SunSpec battery or vendor register map)")
    p.add_argument("--kind", choices=["sunspec", "regmap"], default="sunspec")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--tcp", metavar="HOST:PORT", help="serve Modbus TCP (port 0 = any free port)"
    )
    where.add_argument("--rtu-pty", action="store_true", help="serve Modbus RTU on a new pty pair")
    p.add_argument("--baud", type=int, default=19200)
    p.add_argument("--device-id", type=int, default=1)
    p.add_argument("--strings", type=int, default=2, help="SunSpec: strings")
    p.add_argument("--modules", type=int, default=8, help="SunSpec: modules per string")
    p.add_argument("--cells", type=int, default=12, help="SunSpec: cells per module")
    p.add_argument(
        "--base", type=int, default=40000, help="SunSpec: base address (0, 40000, 50000)"
    )
    p.add_argument("--serial", default=None, help="SunSpec: serial number in model 1")
    p.add_argument(
        "--fault", action="append", default=[], metavar="SPEC", help="inject a fault (repeatable)"
    )
    p.set_defaults(func=_run)


def build_device(args: argparse.Namespace) -> ModbusDeviceSim:
    """The simulator described by the command-line flags."""
    faults = [parse_fault(f) for f in args.fault]
    if args.kind == "regmap":
        from edge_agent.sim.modbus_regmap import byd_device

        return byd_device(device_id=args.device_id, faults=faults)
    from edge_agent.sim.modbus_sunspec import SunSpecBattery, sunspec_device

    for flag in ("strings", "modules", "cells"):
        if not 1 <= getattr(args, flag) <= 64:
            raise ConfigError(f"--{flag} must be 1..64")
    extra = {"serial": args.serial} if args.serial else {}
    battery = SunSpecBattery(
        strings=args.strings,
        modules_per_string=args.modules,
        cells_per_module=args.cells,
        base=args.base,
        **extra,
    )
    return sunspec_device(battery, device_id=args.device_id, faults=faults)


async def _serve(args: argparse.Namespace) -> int:
    device = build_device(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with device:
        if args.rtu_pty:
            path = await device.start_rtu_pty(args.baud)
            print(f"rtu://{path}?baud={args.baud}", flush=True)
        else:
            host, _, port = args.tcp.rpartition(":")
            if not port.isdigit():
                raise ConfigError(f"--tcp must be HOST:PORT, got {args.tcp!r}")
            bound = await device.start_tcp(host or "127.0.0.1", int(port))
            print(f"tcp://{host or '127.0.0.1'}:{bound}", flush=True)
        await stop.wait()
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        sys.stderr.write("stopped\n")
        return 0
