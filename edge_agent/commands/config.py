"""``edge-agent config check|show``: validate the configuration and print the effective values."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from edge_agent.config import check_site, find_config_file, load_config
from edge_agent.dataform import to_plain


def register(sub: Any) -> None:
    """Add ``config check`` and ``config show``."""
    parser = sub.add_parser("config", help="validate and show the configuration")
    commands = parser.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    check = commands.add_parser(
        "check",
        help="validate the config file, data folders and broker TLS (exit 2 when invalid; "
        "warnings such as insecure_skip_verify: one line each on stderr, exit 0)",
    )
    check.add_argument(
        "--gateway",
        action="store_true",
        help="also check the gateway sections (automatic when the file has [gateway])",
    )
    check.set_defaults(func=_check)
    commands.add_parser("show", help="print the effective configuration as JSON").set_defaults(
        func=_show
    )


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    where = find_config_file(args.config)
    result = check_site(config, gateway=args.gateway or _has_gateway_section(where))
    for problem in result.problems:
        print(f"error: {problem}", file=sys.stderr)
    if result.problems:
        return 2
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"config ok: {where if where else 'defaults (no config file found)'}")
    return 0


def _has_gateway_section(where: Path | None) -> bool:
    if where is None:
        return False
    # load_config already read and validated this file
    return "gateway" in tomllib.loads(where.read_text(encoding="utf-8"))


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
