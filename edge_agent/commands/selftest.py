"""``edge-agent selftest``: check every configured part; a verdict and a next step per line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge_agent.commands._args import positive_seconds
from edge_agent.config import AgentConfig, load_config


def register(sub: Any) -> None:
    """Add the ``selftest`` subcommand."""
    p = sub.add_parser("selftest", help="check buses, camera, nodes, broker, key, clock and disk")
    # SUPPRESS keeps the top-level --config when the subcommand's own one is not given.
    p.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML config file")
    p.add_argument("--json", action="store_true", help="print one JSON document (for automation)")
    p.add_argument(
        "--only", action="append", metavar="CHECK", help="run only this check (repeatable)"
    )
    p.add_argument(
        "--list", action="store_true", help="list the checks and whether the config requires them"
    )
    p.add_argument(
        "--timeout", type=positive_seconds, default=None, help="per-check timeout in seconds"
    )
    p.add_argument(
        "--frame-window",
        type=positive_seconds,
        default=2.0,
        help="seconds to listen for CAN frames",
    )
    p.add_argument("--modbus-register", type=int, default=None, help="holding register to read")
    p.add_argument("--sysfs-root", type=Path, default=Path("/sys"), help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the self-test; exit 0 only when every required check passed."""
    from edge_agent.selftest import CheckContext, render_json, render_table, run_selftest

    config = load_config(args.config)
    if args.list:
        return _list_checks(config, as_json=args.json)
    ctx = CheckContext(
        config=config,
        sysfs_root=args.sysfs_root,
        frame_window_s=args.frame_window,
        modbus_register=args.modbus_register,
    )
    report = run_selftest(ctx, only=args.only, timeout_s=args.timeout)
    if args.json:
        print(render_json(report))
    else:
        render_table(report, sys.stdout)
    return report.exit_code


def _list_checks(config: AgentConfig, *, as_json: bool) -> int:
    from edge_agent.selftest import registered_checks

    rows = [
        {"name": s.name, "title": s.title, "required": s.required(config), "timeout_s": s.timeout_s}
        for s in registered_checks()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            need = "required" if row["required"] else "optional"
            print(f"{row['name']:<10} {need:<9} {row['title']}")
    return 0
