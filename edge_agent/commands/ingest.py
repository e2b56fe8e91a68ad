"""``edge-agent ingest``: run a reference ingest worker; ``ingest migrate`` sets up the database."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from edge_agent.config import load_config
from edge_agent.ingest.settings import IngestSettings


def register(sub: Any) -> None:
    """Add ``ingest`` (run a worker) and ``ingest migrate``."""
    parser = sub.add_parser("ingest", help="store verified upstream events (reference backend)")
    _common(parser)
    parser.add_argument("--share-group", default=None, help="MQTT 5 shared subscription group")
    parser.set_defaults(func=_run)
    commands = parser.add_subparsers(dest="ingest_command", metavar="SUBCOMMAND")
    migrate = commands.add_parser("migrate", help="apply schema migrations, print the version")
    _common(migrate)
    migrate.set_defaults(func=_migrate)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", dest="ingest_config", type=Path, default=argparse.SUPPRESS, help="TOML file"
    )
    parser.add_argument(
        "--database",
        default=argparse.SUPPRESS,
        help="sqlite:///PATH or postgresql://... (default from [ingest])",
    )


def settings_from(args: argparse.Namespace) -> IngestSettings:
    """``[ingest]`` of the config file with the command-line overrides."""
    settings = load_config(getattr(args, "ingest_config", None) or args.config).ingest
    database = getattr(args, "database", None)
    if database:
        settings = replace(settings, database=database)
    group = getattr(args, "share_group", None)
    if group is not None:
        settings = replace(settings, share_group=group)
    return settings


def _run(args: argparse.Namespace) -> int:
    from edge_agent.ingest.service import run_service

    return run_service(settings_from(args))


def _migrate(args: argparse.Namespace) -> int:
    from edge_agent.ingest.db import Database

    with Database(settings_from(args).database_url) as db:
        print(f"schema version {db.migrate()}")
    return 0
