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
    from rich.console import Console

    from edge_agent.station.service import run_service

    config = load_config(args.config)
    check_data_dir(config.station.data_dir)
    console = Console()
    attachments = []
    if config.ui.enabled:
        # only then: aiohttp, Jinja2 and Babel cost ~14 MB of a station's memory
        from edge_agent.ui.server import kiosk_attachment

        # a non-loopback [ui] host without a PIN stops here (ConfigError, exit status 2)
        kiosk = kiosk_attachment(config.ui, console=console)
        attachments = [kiosk] if kiosk is not None else []
    return asyncio.run(run_service(config, console=console, attachments=attachments))
