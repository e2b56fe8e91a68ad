"""CLI pieces of the Modbus backend, used by ``edge_agent.commands.bms``."""

from __future__ import annotations

import argparse


def add_read_arguments(parser: argparse.ArgumentParser) -> None:
    """Modbus flags of ``bms read`` (``--modbus URL``, device id, ...)."""
    parser.add_argument(
        "--modbus", metavar="URL", help="tcp://HOST:PORT or rtu:///dev/ttyX?baud=19200"
    )


def run_read(args: argparse.Namespace) -> int:
    """``bms read --modbus URL``."""
    raise NotImplementedError("Modbus BMS reading is not built yet")
