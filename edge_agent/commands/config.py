"""``edge-agent config check|show``: validate the configuration and print the effective values."""

from __future__ import annotations

import argparse
import json
from typing import Any

from edge_agent.config import find_config_file, load_config
from edge_agent.dataform import to_plain


def register(sub: Any) -> None:
    """Add ``config check`` and ``config show``."""
    parser = sub.add_parser("config", help="validate and show the configuration")
    commands = parser.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    commands.add_parser(
        "check", help="validate the config file (exit 2 when invalid)"
    ).set_defaults(func=_check)
    commands.add_parser("show", help="print the effective configuration as JSON").set_defaults(
        func=_show
    )


def _check(args: argparse.Namespace) -> int:
    load_config(args.config)
    where = find_config_file(args.config)
    print(f"config ok: {where if where else 'defaults (no config file found)'}")
    return 0


def _show(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    plain = to_plain(config)
    _redact(plain)
    print(json.dumps(plain, indent=2, ensure_ascii=False))
    return 0


def _redact(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "password" and value:
                node[key] = "***"
            else:
                _redact(value)
