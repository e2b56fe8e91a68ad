"""``edge-agent node``: list nodes, tare, calibrate, and watch their messages."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from edge_agent.commands._args import seconds
from edge_agent.config import load_config
from edge_agent.dataform import to_plain
from edge_agent.errors import ConfigError
from edge_agent.nodes.registry import NodeRegistry
from edge_agent.nodes.settings import NodeSettings

T = TypeVar("T")


def register(sub: Any) -> None:
    """Add ``node list|tare|calibrate|monitor``."""
    parser = sub.add_parser("node", help="MicroPython scale and sensor nodes")
    commands = parser.add_subparsers(dest="node_command", metavar="SUBCOMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--port",
            action="append",
            help="serial port/glob (repeatable; default: nodes.ports from the config)",
        )

    p = commands.add_parser("list", help="show every node's id, role, firmware and liveness")
    common(p)
    p.set_defaults(func=lambda a: _run(a, _list))
    p = commands.add_parser("tare", help="tare the scale (waits for a stable reading)")
    common(p)
    p.add_argument("--clear", action="store_true", help="remove the tare instead")
    p.set_defaults(func=lambda a: _scale(a, "tare", {"clear": bool(a.clear)}, _tare))
    p = commands.add_parser("calibrate", help="two-point calibration: --zero, then --span KG")
    common(p)
    point = p.add_mutually_exclusive_group(required=True)
    point.add_argument("--zero", action="store_true", help="first point: the empty scale")
    point.add_argument("--span", type=float, metavar="KG", help="second point: a known mass")
    p.set_defaults(func=lambda a: _scale(a, "calibrate", _calibration(a), _calibrate))
    p = commands.add_parser("stop", help="stop the node app and return it to its REPL (mpremote)")
    common(p)
    p.add_argument("--role", default="scale", help="which node (scale or sensors)")
    p.set_defaults(func=lambda a: _run(a, _stop))
    p = commands.add_parser("monitor", help="print every node message as a JSON line")
    common(p)
    p.add_argument("--count", type=int, default=0, help="stop after N messages (0 = never)")
    p.add_argument("--seconds", type=seconds, default=0, help="stop after S seconds (0 = never)")
    p.set_defaults(func=lambda a: _run(a, _monitor))


def _settings(args: argparse.Namespace) -> NodeSettings:
    cfg = load_config(args.config).nodes
    if args.port:
        return NodeSettings(**{**cfg.__dict__, "ports": tuple(args.port)})
    if not cfg.ports:
        raise ConfigError("no node ports: pass --port or set nodes.ports", key_path="nodes.ports")
    return cfg


def _run(
    args: argparse.Namespace,
    action: Callable[[NodeRegistry, NodeSettings, argparse.Namespace], Awaitable[int]],
) -> int:
    settings = _settings(args)

    async def main() -> int:
        reg = await NodeRegistry.open(
            settings.ports,
            baudrate=settings.baudrate,
            hello_timeout_s=settings.hello_timeout_s,
            node_config=settings.node_config,
        )
        async with reg:
            return await action(reg, settings, args)

    return asyncio.run(main())


def _print(obj: Any) -> None:
    print(json.dumps(obj, sort_keys=True), flush=True)


async def _list(reg: NodeRegistry, s: NodeSettings, args: argparse.Namespace) -> int:
    for row in reg.status():
        _print(to_plain(row))
    return 0


def _scale(
    args: argparse.Namespace,
    command: str,
    cmd: dict[str, Any],
    action: Callable[[NodeRegistry, NodeSettings, argparse.Namespace], Awaitable[int]],
) -> int:
    """Through the running service when there is one, else over the node's port directly."""
    status = _via_service(args, command, cmd)
    return _run(args, action) if status is None else status


def _via_service(args: argparse.Namespace, command: str, cmd: dict[str, Any]) -> int | None:
    """Run a scale command through a running ``edge-agent run`` (which owns the node's port);
    None when no service runs (the command then opens the port itself)."""
    if getattr(args, "port", None):
        return None  # an explicit port: talk to that node directly
    from edge_agent.errors import StationError
    from edge_agent.station.control import request_scale, socket_path

    config = load_config(args.config)
    path = socket_path(config.station.data_dir)
    if not path.exists():
        return None
    try:
        answer = asyncio.run(request_scale(path, command, cmd, config.nodes.command_timeout_s))
    except StationError:
        return None
    if not answer.get("ok"):
        raise StationError(f"the running station refused: {answer.get('error')}")
    ack = answer["ack"]
    _print({"op": command, **cmd, "ok": ack["ok"], "result": ack["result"], "cfg": ack["cfg"]})
    return 0


async def _tare(reg: NodeRegistry, s: NodeSettings, args: argparse.Namespace) -> int:
    ack = await reg.find("scale").command(
        "tare", {"clear": bool(args.clear)}, timeout=s.command_timeout_s
    )
    _print({"op": "tare", "ok": ack.ok, "result": ack.result, "cfg": ack.cfg})
    return 0


def _calibration(args: argparse.Namespace) -> dict[str, Any]:
    return {"point": "zero"} if args.zero else {"point": "span", "kg": args.span}


async def _calibrate(reg: NodeRegistry, s: NodeSettings, args: argparse.Namespace) -> int:
    cmd = _calibration(args)
    ack = await reg.find("scale").command("calibrate", cmd, timeout=s.command_timeout_s)
    _print({"op": "calibrate", **cmd, "ok": ack.ok, "result": ack.result, "cfg": ack.cfg})
    return 0


async def _stop(reg: NodeRegistry, s: NodeSettings, args: argparse.Namespace) -> int:
    ack = await reg.find(args.role).command("stop", timeout=s.command_timeout_s)
    _print({"op": "stop", "ok": ack.ok})
    return 0


async def _monitor(reg: NodeRegistry, s: NodeSettings, args: argparse.Namespace) -> int:
    end = time.monotonic() + args.seconds if args.seconds else None
    n = 0
    with reg.hub.subscribe() as q:
        while not args.count or n < args.count:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                msg = await asyncio.wait_for(q.get(), left)
            except TimeoutError:
                break
            _print({**to_plain(msg.envelope), **to_plain(msg.body)})
            n += 1
    sys.stdout.flush()
    return 0
