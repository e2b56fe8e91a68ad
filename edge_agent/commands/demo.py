"""``edge-agent demo``: the whole bench on simulated parts (README's main-job command)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig, config_from_plain
from edge_agent.errors import ConfigError

SITE, STATION = "demo-site", "bench-1"


def register(sub: Any) -> None:
    """Add ``demo``."""
    parser = sub.add_parser("demo", help="identify simulated packs end to end (no hardware)")
    parser.add_argument(
        "--broker",
        metavar="HOST:PORT",
        default=None,
        help="use this MQTT broker instead of the embedded one",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep keys, outbox and photos here"
    )
    parser.set_defaults(func=_demo)


def demo_config(workdir: Path, host: str, port: int, *, protocol: str = "auto") -> AgentConfig:
    """The agent configuration the demo runs with."""
    return config_from_plain(
        {
            "station": {
                "site": SITE,
                "station": STATION,
                "data_dir": str(workdir / "data"),
                "bms": {"timeout_s": 4.0, "retries": 0},
                "label": {"timeout_s": 4.0, "retries": 0},
                "weight": {"timeout_s": 6.0, "retries": 0},
                "manufacturers": {"001": ["CATL"], "03U": ["Example Storage"]},
            },
            "signing": {"key_dir": str(workdir / "keys")},
            "uplink": {
                "mqtt": {
                    "host": host,
                    "port": port,
                    "protocol": protocol,
                    "client_id": "demo-bench-1",
                }
            },
        }
    )


def _demo(args: argparse.Namespace) -> int:
    import logging

    from edge_agent.sim.demo import run_demo

    if args.log_level == "info":  # the panels are the demo's output; keep the log for problems
        logging.getLogger().setLevel(logging.WARNING)

    broker = None
    if args.broker:
        host, _, port = args.broker.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"--broker must be HOST:PORT, got {args.broker!r}")
        broker = (host, int(port))
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    outcomes = asyncio.run(run_demo(demo_config, broker=broker, workdir=args.workdir))
    ok = all(o.published and o.verified.startswith("verified") for o in outcomes)
    return 0 if ok else 1
