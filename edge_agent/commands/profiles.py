"""``edge-agent profiles list|show|validate``: the pack profiles the agent knows."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge_agent.bms.profile import PackProfile, list_profiles, load_profile, load_profile_file
from edge_agent.dataform import to_plain
from edge_agent.errors import ConfigError


def register(sub: Any) -> None:
    """Add ``profiles``."""
    parser = sub.add_parser("profiles", help="list, show and validate pack profiles")
    commands = parser.add_subparsers(dest="profiles_command", metavar="SUBCOMMAND", required=True)
    ls = commands.add_parser("list", help="profile names, methods and files")
    ls.set_defaults(func=_list)
    show = commands.add_parser("show", help="print one profile as JSON")
    show.add_argument("name", help="profile name or .toml path")
    show.set_defaults(func=_show)
    val = commands.add_parser("validate", help="check profile files (all known ones by default)")
    val.add_argument("files", nargs="*", type=Path, metavar="FILE")
    val.set_defaults(func=_validate)


def _dirs(args: argparse.Namespace) -> tuple[Path, ...]:
    from edge_agent.config import load_config

    return load_config(getattr(args, "config", None)).bms.profile_dirs


def _list(args: argparse.Namespace) -> int:
    for name, path in list_profiles(_dirs(args)).items():
        try:
            profile = load_profile_file(path)
            detail = f"{profile.transport:6} {','.join(profile.methods):18} {profile.description}"
        except ConfigError as exc:
            detail = f"INVALID: {exc}"
        print(f"{name:24} {detail}")
    return 0


def _show(args: argparse.Namespace) -> int:
    profile = load_profile(args.name, _dirs(args))
    json.dump(to_plain(profile), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def check_profile(profile: PackProfile) -> None:
    """Deeper checks than loading: a DBC profile's file loads and its signals exist."""
    if "dbc" in profile.methods and profile.transport == "can":
        from edge_agent.bms.can.dbc_source import plan_for

        plan_for(profile)


def _validate(args: argparse.Namespace) -> int:
    files = list(args.files) or list(list_profiles(_dirs(args)).values())
    bad = 0
    for path in files:
        try:
            check_profile(load_profile_file(path))
            print(f"ok       {path}")
        except ConfigError as exc:
            bad += 1
            print(f"invalid  {path}: {exc}")
    return 1 if bad else 0
