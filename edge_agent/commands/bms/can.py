"""CAN flags and subcommands of ``edge-agent bms``.

``bms read`` (one-shot JSON), ``bms capture --out FILE`` (record a session or the bare bus to
a python-can log: .log/.asc/.blf) and ``bms replay FILE`` (decode a recording as a bus). The
sessions themselves are in ``edge_agent.bms.can.capture``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from edge_agent.bms.can.bus import LOG_SUFFIXES
from edge_agent.bms.can.capture import read_session, record_bus
from edge_agent.bms.profile import PackProfile, load_profile
from edge_agent.bms.settings import BmsSettings, CanSettings
from edge_agent.commands._args import positive_seconds
from edge_agent.config import load_config
from edge_agent.dataform import to_plain
from edge_agent.errors import ConfigError
from edge_agent.model import BmsReading

__all__ = ["add_commands", "add_read_arguments", "run_capture", "run_read", "run_replay"]


def add_read_arguments(parser: argparse.ArgumentParser) -> None:
    """CAN flags of ``bms read`` (python-can interface, channel, bitrate, replay file)."""
    _bus_arguments(parser)
    parser.add_argument(
        "--replay", metavar="FILE", help="decode a python-can log file instead of a live bus"
    )
    parser.add_argument("--record", metavar="FILE", help="also record the session (.log/.asc/.blf)")


def _bus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interface", help="python-can interface: socketcan, slcan, pcan, virtual, ..."
    )
    parser.add_argument("--channel", help="python-can channel: can0, /dev/ttyACM0, ...")
    parser.add_argument("--bitrate", type=int, help="bit/s (default: the profile's)")


def add_commands(commands: Any) -> None:
    """Extra ``bms`` subcommands owned by the CAN backend (capture, replay)."""
    cap = commands.add_parser("capture", help="record CAN traffic (optionally while reading a BMS)")
    cap.add_argument("--out", required=True, metavar="FILE", help="log file: .log, .asc or .blf")
    cap.add_argument("--profile", help="also run this profile's read (e.g. the GB/T handshake)")
    cap.add_argument(
        "--duration", type=positive_seconds, default=5.0, help="seconds to record without --profile"
    )
    cap.add_argument("--timeout", type=positive_seconds, default=None)
    _bus_arguments(cap)
    cap.set_defaults(func=run_capture)
    rep = commands.add_parser("replay", help="decode a recorded session with a profile, print JSON")
    rep.add_argument("file", metavar="FILE")
    rep.add_argument("--profile", help="pack profile name or .toml path")
    rep.add_argument("--timeout", type=positive_seconds, default=None)
    rep.set_defaults(func=run_replay)


def _settings(args: argparse.Namespace) -> BmsSettings:
    return load_config(getattr(args, "config", None)).bms


def _can_settings(base: CanSettings, args: argparse.Namespace) -> CanSettings:
    changes: dict[str, Any] = {}
    for name in ("interface", "channel"):
        if getattr(args, name, None):
            changes[name] = getattr(args, name)
    if getattr(args, "replay", None):
        changes["replay"] = args.replay
    if changes.get("interface") == "slcan" and base.open_delay_s is None:
        changes["open_delay_s"] = 0.0
    return replace(base, **changes)


def _profile(args: argparse.Namespace, settings: BmsSettings) -> PackProfile:
    profile = load_profile(args.profile or settings.profile, settings.profile_dirs)
    if getattr(args, "bitrate", None):
        profile = replace(profile, bitrate=args.bitrate)
    if profile.transport != "can":
        raise ConfigError(f"profile {profile.name!r} is for {profile.transport}; use --modbus URL")
    return profile


def _check_log_suffix(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() not in LOG_SUFFIXES:
        raise ConfigError(
            f"log file must end in one of {', '.join(LOG_SUFFIXES)}", key_path="--out"
        )
    return out


def _print(reading: BmsReading) -> int:
    json.dump(to_plain(reading), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 1 if reading.status == "failed" else 0


def run_read(args: argparse.Namespace) -> int:
    """``bms read`` over CAN: print the reading as JSON; exit 1 when it failed."""
    settings = _settings(args)
    profile = _profile(args, settings)
    can = _can_settings(settings.can, args)
    record = _check_log_suffix(args.record) if getattr(args, "record", None) else None
    timeout = args.timeout or settings.timeout_s
    return _print(asyncio.run(read_session(profile, can, timeout, record)))


def run_replay(args: argparse.Namespace) -> int:
    """``bms replay FILE``: the recording is the bus."""
    settings = _settings(args)
    profile = _profile(args, settings)
    can = replace(settings.can, replay=args.file)
    return _print(asyncio.run(read_session(profile, can, args.timeout or settings.timeout_s, None)))


def run_capture(args: argparse.Namespace) -> int:
    """``bms capture --out FILE``: record while reading (with --profile) or for --duration."""
    settings = _settings(args)
    out = _check_log_suffix(args.out)
    can = _can_settings(settings.can, args)
    if args.profile:
        profile = _profile(args, settings)
        reading = asyncio.run(read_session(profile, can, args.timeout or settings.timeout_s, out))
        print(f"recorded to {out}; reading status {reading.status}", file=sys.stderr)
        return _print(reading)
    if args.bitrate:
        can = replace(can, bitrate=args.bitrate)
    started = time.monotonic()
    asyncio.run(record_bus(can, out, args.duration))
    print(f"recorded {time.monotonic() - started:.1f} s to {out}", file=sys.stderr)
    return 0
