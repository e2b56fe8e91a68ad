"""CLI pieces of the CAN backend, used by ``edge_agent.commands.bms``."""

from __future__ import annotations

import argparse
from typing import Any


def add_read_arguments(parser: argparse.ArgumentParser) -> None:
    """CAN flags of ``bms read`` (python-can interface, channel, bitrate, replay file)."""


def add_commands(commands: Any) -> None:
    """Extra ``bms`` subcommands owned by the CAN backend (capture, replay)."""


def run_read(args: argparse.Namespace) -> int:
    """``bms read`` over CAN."""
    raise NotImplementedError("CAN BMS reading is not built yet")
