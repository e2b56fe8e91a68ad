"""``edge-agent code parse TEXT``: parse a pack code / passport id / GS1 / 15434 text."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from edge_agent.codes import parse_identifier, parse_strict
from edge_agent.errors import CodeError

log = logging.getLogger("edge_agent.codes")


def register(sub: Any) -> None:
    """Add ``code parse``."""
    parser = sub.add_parser("code", help="parse pack codes (GB/T 34014, passport, GS1, 15434)")
    commands = parser.add_subparsers(dest="code_command", metavar="SUBCOMMAND", required=True)
    parse = commands.add_parser("parse", help="parse one code and print its fields as JSON")
    parse.add_argument("text", help="the code text (use $'...' for control characters)")
    parse.add_argument("--json", action="store_true", help="JSON output (the default)")
    parse.add_argument(
        "--any",
        action="store_true",
        help="accept any text (kind 'text') instead of failing when it is not a pack code",
    )
    parse.set_defaults(func=_parse)


def _parse(args: argparse.Namespace) -> int:
    text: str = args.text
    if args.any:
        parsed = parse_identifier(text)
    else:
        try:
            parsed = parse_strict(text)
        except CodeError as exc:
            log.debug("code rejected: %s", exc)  # the JSON line below is the one answer
            out = {"error": exc.reason, "position": exc.position, "text": text}
            print(json.dumps(out, ensure_ascii=False), file=sys.stderr)
            return 2
    print(
        json.dumps(
            {"kind": parsed.kind, "text": parsed.text, "fields": parsed.fields_as_text()},
            ensure_ascii=False,
            indent=2,
        )
    )
    return 0
