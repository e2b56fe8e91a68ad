"""``edge-agent sim fieldkit``: every simulator a station needs, plus the matching config.

Prints what runs where and the config path, writes ``fieldkit.json`` (config path, pids) in the
workdir, then supervises until SIGINT/SIGTERM and stops every child cleanly. ``sim bench`` is a
hidden alias kept for old scripts.
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from edge_agent.commands._args import seconds
from edge_agent.sim.fieldkit import PROFILES, FieldKit, FieldKitSpec

__all__ = ["HIDDEN_ALIASES", "register", "run"]

# old command names that still work but are not listed in ``sim --help``
HIDDEN_ALIASES = ("bench",)


def register(sub: Any, name: str) -> None:
    """Add ``sim fieldkit`` (and its hidden alias ``sim bench``)."""
    _add_arguments(
        sub.add_parser(
            name, help="a whole simulated station (BMS, node, camera, broker, key) and its config"
        )
    )
    for alias in HIDDEN_ALIASES:
        _add_arguments(sub.add_parser(alias))  # no help=: not listed


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config-out", type=Path, required=True, metavar="FILE", help="config to write")
    p.add_argument("--bms", choices=list(PROFILES), default="gbt27930", help="simulated BMS")
    p.add_argument("--modbus", choices=["tcp", "rtu"], default="tcp", help="Modbus transport")
    p.add_argument(
        "--broker", default="embedded", metavar="embedded|HOST:PORT", help="MQTT broker to use"
    )
    p.add_argument("--workdir", type=Path, default=None, help="keys, data, labels, logs (kept)")
    p.add_argument(
        "--replay-can", type=Path, default=None, metavar="FILE.log", help="recorded CAN session"
    )
    p.add_argument("--labels", type=Path, default=None, metavar="DIR", help="recorded label photos")
    p.add_argument(
        "--duration", type=seconds, default=0.0, help="seconds to run (0 = until signalled)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the field kit, print it, run until signalled; 0 after a clean stop."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # absolute paths: the written config must work from any directory
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="edge-agent-fieldkit-"))).resolve()
    spec = FieldKitSpec(
        workdir=workdir,
        config_out=args.config_out,
        bms=args.bms,
        modbus=args.modbus,
        broker=args.broker,
        replay_can=args.replay_can,
        labels=args.labels,
    )
    kit = FieldKit(spec)
    kit.start()
    try:
        width = max(len(p.name) for p in kit.parts)
        for part in kit.parts:
            pid = f" (pid {part.proc.pid})" if part.proc is not None else ""
            print(f"{part.name:<{width}}  {part.where}{pid}", flush=True)
        config = args.config_out
        print(f"field kit ready: config {config} (state {kit.state_path})", flush=True)
        print(f"try: edge-agent --config {config} selftest", flush=True)
        print(f"     edge-agent --config {config} identify", flush=True)
        deadline = args.duration or None
        waited = 0.0
        while not stop.wait(0.5):
            waited += 0.5
            for part in kit.poll():
                print(
                    f"{part.name} stopped (exit {part.proc.returncode if part.proc else '?'})",
                    flush=True,
                )
            if deadline is not None and waited >= deadline:
                break
    finally:
        kit.stop()
        print("field kit stopped", flush=True)
    return 0
