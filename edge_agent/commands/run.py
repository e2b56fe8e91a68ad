"""``edge-agent run``: the station service (waits for docks, serves identifications, drains)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from edge_agent.config import check_data_dir, load_config


def register(sub: Any) -> None:
    """Add ``run``."""
    parser = sub.add_parser("run", help="run the bench station service")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from edge_agent.station.service import run_service

    config = load_config(args.config)
    check_data_dir(config.station.data_dir)
    return asyncio.run(run_service(config))
