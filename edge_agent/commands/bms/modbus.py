"""Modbus flags of ``edge-agent bms read`` (``--modbus URL``) and the read they run."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import replace

from edge_agent.bms import read_bms
from edge_agent.bms.profile import load_profile
from edge_agent.bms.settings import ModbusSettings
from edge_agent.commands._args import positive_seconds, seconds
from edge_agent.config import load_config
from edge_agent.dataform import from_plain, to_plain
from edge_agent.errors import ConfigError

__all__ = ["DEFAULT_PROFILE", "add_read_arguments", "run_read"]

DEFAULT_PROFILE = "sunspec-battery"


def add_read_arguments(parser: argparse.ArgumentParser) -> None:
    """Modbus flags of ``bms read`` (``--modbus URL``, device id, retries, inter-frame delay)."""
    group = parser.add_argument_group("Modbus")
    group.add_argument(
        "--modbus", metavar="URL", help="tcp://HOST:PORT or rtu:///dev/ttyX?baud=19200"
    )
    group.add_argument(
        "--device-id",
        type=int,
        default=None,
        help="Modbus device (unit) id, default from config (1)",
    )
    group.add_argument(
        "--retries", type=int, default=None, help="retries per request (default from config)"
    )
    group.add_argument(
        "--request-timeout",
        type=positive_seconds,
        default=None,
        help="seconds per Modbus request (default from config)",
    )
    group.add_argument(
        "--inter-frame-delay",
        type=seconds,
        default=None,
        help="seconds between requests (RTU turnaround)",
    )


def run_read(args: argparse.Namespace) -> int:
    """``bms read --modbus URL``: print the BmsReading as JSON; exit 0 ok, 1 partial or failed."""
    config = load_config(getattr(args, "config", None))
    settings = replace(config.bms.modbus, url=args.modbus)
    overrides = {
        "device_id": args.device_id,
        "retries": args.retries,
        "timeout_s": args.request_timeout,
        "inter_frame_delay_s": args.inter_frame_delay,
    }
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    # re-validate so a flag gets the same range checks as the config file
    settings = from_plain(ModbusSettings, to_plain(settings), path="bms.modbus", error=ConfigError)
    profile = load_profile(args.profile or DEFAULT_PROFILE, config.bms.profile_dirs)
    timeout = args.timeout if args.timeout is not None else max(5.0, settings.timeout_s * 4)
    reading = asyncio.run(read_bms(profile, replace(config.bms, modbus=settings), timeout))
    json.dump(to_plain(reading), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0 if reading.status == "ok" else 1
