"""``edge-agent`` entry point: subcommands only parse arguments and dispatch."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edge_agent import __version__, commands
from edge_agent.errors import CodeError, ConfigError, EdgeAgentError, TokenError
from edge_agent.logs import setup_logging
from edge_agent.malloc_tuning import tune_malloc

log = logging.getLogger("edge_agent.cli")

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description="Battery-pack identification edge agent and site gateway.",
    )
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML config file (default: $EDGE_AGENT_CONFIG, ./edge-agent.toml, "
        "~/.config/edge-agent/config.toml, /etc/edge-agent/config.toml)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log-format", default="text", choices=["text", "json"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{commands.__name__}.{info.name}")
        except Exception as exc:  # one broken command must not break the others
            _broken_command(sub, info.name, exc)
            continue
        module.register(sub)
    return parser


def _broken_command(sub: Any, name: str, exc: Exception) -> None:
    p = sub.add_parser(name, help=f"(unavailable: {exc})")
    p.add_argument("rest", nargs=argparse.REMAINDER)

    def explain(_: argparse.Namespace) -> int:
        print(f"edge-agent {name}: unavailable because of an import error: {exc}", file=sys.stderr)
        return 2

    p.set_defaults(func=explain)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, set up logging, dispatch; map typed errors to exit codes without tracebacks."""
    tune_malloc()  # before any worker thread starts (caps malloc arenas; no-op off glibc)
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(level=args.log_level, fmt=args.log_format)
    func: Handler | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return func(args)
    except (ConfigError, CodeError, TokenError) as exc:
        # a token that cannot sign is a set-up problem like a bad config: status 2, one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except EdgeAgentError as exc:
        # one line on stderr (journald keeps it for services); the type only at debug level
        log.debug("%s: %s", type(exc).__name__, exc)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
