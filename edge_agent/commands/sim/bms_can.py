"""``edge-agent sim bms-can``: run a GB/T 27930 BMS, a UDS ECU or a DBC broadcaster as a process.

The bus is python-can's: ``--slcan /dev/pts/N`` (one end of a pty null modem), or
``--interface/--channel`` (e.g. socketcan can0 on a bench). ``--pty-pair`` creates a null
modem itself, runs the simulator on one end and prints the other end's path for the agent.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from edge_agent.commands._args import seconds
from edge_agent.errors import SimulatorError

__all__ = ["register", "run"]


def register(sub: Any, name: str) -> None:
    """Add ``sim bms-can``."""
    p = sub.add_parser(name, help="simulate a BMS on CAN (GB/T 27930, UDS or DBC broadcasts)")
    p.add_argument("--protocol", choices=["gbt27930", "uds", "dbc"], default="gbt27930")
    p.add_argument("--slcan", metavar="PTY", help="serial port / pty path for python-can slcan")
    p.add_argument(
        "--pty-pair", action="store_true", help="create a pty null modem, print the agent's end"
    )
    p.add_argument("--interface", default="virtual", help="python-can interface (without --slcan)")
    p.add_argument("--channel", default="vcan0")
    p.add_argument("--bitrate", type=int, default=None, help="default 250000 (GB/T) / 500000")
    p.add_argument("--cells", type=int, default=96, help="GB/T: number of cells")
    p.add_argument("--cell-voltage", type=float, default=3.70)
    p.add_argument("--serial", default="1234", help="GB/T: 4-character pack serial")
    p.add_argument("--manufacturer", default="CATL")
    p.add_argument("--vin", default="LSVAU2180N2183294")
    p.add_argument("--fault", action="append", default=[], help="GB/T BSM fault token (repeatable)")
    p.add_argument(
        "--drop-packet", type=int, action="append", default=[], help="GB/T: drop TP.DT seq once"
    )
    p.add_argument("--abort-after", type=int, default=None, help="GB/T: abort BRM after N packets")
    p.add_argument("--silent", action="store_true", help="never answer")
    p.add_argument("--profile", help="dbc: pack profile whose DBC and fields to broadcast")
    p.add_argument(
        "--set", action="append", default=[], metavar="SIGNAL=VALUE", help="dbc: a value"
    )
    p.add_argument(
        "--duration", type=seconds, default=0.0, help="seconds to run (0 = until signalled)"
    )
    p.set_defaults(func=run)


def _simulator(args: argparse.Namespace, interface: str, channel: str, bitrate: int) -> Any:
    if args.protocol == "gbt27930":
        from edge_agent.sim.can_gbt import DEFAULT_BRM, GbtBmsSimulator

        identity = DEFAULT_BRM.__class__(
            **{
                **DEFAULT_BRM.__dict__,
                "serial": args.serial,
                "manufacturer": args.manufacturer,
                "vin": args.vin,
            }
        )
        cells = tuple(round(args.cell_voltage + 0.01 * (i % 3), 3) for i in range(args.cells))
        return GbtBmsSimulator(
            interface=interface,
            channel=channel,
            bitrate=bitrate,
            identity=identity,
            cells=cells,
            faults=tuple(args.fault),
            drop_packets=tuple(args.drop_packet),
            abort_after_packets=args.abort_after,
            silent=args.silent,
        )
    if args.protocol == "uds":
        from edge_agent.sim.can_uds import UdsEcuSimulator, UdsSimConfig

        return UdsEcuSimulator(
            interface=interface,
            channel=channel,
            bitrate=bitrate,
            config=UdsSimConfig(silent=args.silent),
        )
    from edge_agent.bms.can.dbc_source import plan_for
    from edge_agent.bms.profile import load_profile
    from edge_agent.sim.can_dbc import DbcBroadcasterSimulator, demo_config

    if not args.profile:
        raise SimulatorError("--protocol dbc needs --profile NAME")
    plan = plan_for(load_profile(args.profile))
    values: dict[str, float] = {}
    for item in args.set:
        name, sep, number = item.partition("=")
        try:
            values[name] = float(number)
        except ValueError:
            raise SimulatorError(f"--set needs SIGNAL=NUMBER, got {item!r}") from None
        if not sep:
            raise SimulatorError(f"--set needs SIGNAL=NUMBER, got {item!r}")
    config = demo_config(plan, values=values)
    return DbcBroadcasterSimulator(
        plan.db, config, interface=interface, channel=channel, bitrate=bitrate
    )


def run(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM (or --duration)."""
    bitrate = args.bitrate or (250_000 if args.protocol == "gbt27930" else 500_000)
    modem = None
    if args.pty_pair:
        from edge_agent.sim.can_pty import PtyNullModem

        modem = PtyNullModem().start()
        interface, channel = "slcan", modem.b_path
        print(f"agent side: --interface slcan --channel {modem.a_path}", flush=True)
    elif args.slcan:
        interface, channel = "slcan", args.slcan
        if not Path(args.slcan).exists():
            raise SimulatorError(f"no such serial port: {args.slcan}")
    else:
        interface, channel = args.interface, args.channel
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sim = _simulator(args, interface, channel, bitrate)
    try:
        sim.start()
        print(f"ready: {args.protocol} on {interface}:{channel} at {bitrate} bit/s", flush=True)
        stop.wait(args.duration or None)
    finally:
        sim.stop()
        if modem is not None:
            modem.stop()
    if sim.error is not None:
        print(f"simulator failed: {sim.error}", file=sys.stderr)
        return 1
    return 0
