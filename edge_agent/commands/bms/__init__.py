"""``edge-agent bms``: read a pack's BMS once (CAN or Modbus), capture and replay CAN sessions."""

from __future__ import annotations

import argparse
from typing import Any

from edge_agent.commands._args import positive_seconds
from edge_agent.commands.bms import can as can_commands
from edge_agent.commands.bms import modbus as modbus_commands

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add ``bms read`` (and the CAN capture/replay commands)."""
    parser = sub.add_parser("bms", help="read a pack's BMS (CAN or Modbus)")
    commands = parser.add_subparsers(dest="bms_command", metavar="SUBCOMMAND", required=True)
    read = commands.add_parser("read", help="read identity and state once and print JSON")
    read.add_argument("--profile", help="pack profile name or .toml path")
    read.add_argument(
        "--timeout", type=positive_seconds, default=None, help="seconds (default from config)"
    )
    read.add_argument("--json", action="store_true", help="machine-readable output (default)")
    can_commands.add_read_arguments(read)
    modbus_commands.add_read_arguments(read)
    read.set_defaults(func=_read)
    can_commands.add_commands(commands)


def _read(args: argparse.Namespace) -> int:
    if getattr(args, "modbus", None):
        return modbus_commands.run_read(args)
    return can_commands.run_read(args)
