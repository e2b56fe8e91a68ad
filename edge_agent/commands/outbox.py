"""``edge-agent outbox status|list|retry``: inspect the durable outbox and release back-off."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from edge_agent.config import load_config
from edge_agent.uplink.outbox import Outbox, inspect_outbox, outbox_path


def register(sub: Any) -> None:
    """Add ``outbox status``, ``outbox list`` and ``outbox retry``."""
    parser = sub.add_parser("outbox", help="inspect the outbox of unacknowledged events")
    parser.add_argument("--path", default=None, help="outbox file (default: from config)")
    commands = parser.add_subparsers(dest="outbox_command", metavar="SUBCOMMAND", required=True)
    status = commands.add_parser("status", help="depth, stored bytes, age of the oldest event")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)
    listing = commands.add_parser("list", help="stored events in send order (no payloads)")
    listing.add_argument("--limit", type=int, default=50, help="at most this many rows")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=_list)
    retry = commands.add_parser(
        "retry", help="send rows again at once (rejected and refused ones too)"
    )
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="row ids (see outbox list)")
    retry.add_argument("--all", action="store_true", help="every row (the default without ids)")
    retry.set_defaults(func=_retry)


def _open(args: argparse.Namespace) -> Outbox:
    # inspection and retry never create an outbox or move a bad one aside: the agent does that
    if args.path:
        path = Path(args.path).expanduser()
        inspect_outbox(path)
        return Outbox(path)
    config = load_config(args.config)
    path = outbox_path(config.uplink.outbox, config.station.data_dir)
    inspect_outbox(path)
    return Outbox(path, config.uplink.outbox)


def _report_corruption(outbox: Outbox) -> int:
    if outbox.corruption is not None:
        print(f"warning: {outbox.corruption}")
        return 1
    return 0


def _status(args: argparse.Namespace) -> int:
    with _open(args) as outbox:
        s = outbox.status()
        states = outbox.state_counts()
        if args.json:
            print(
                json.dumps(
                    {
                        "path": s.path,
                        "depth": s.depth,
                        "bytes": s.bytes,
                        "oldest_age_s": round(s.oldest_age_s, 3),
                        "max_attempts": s.max_attempts,
                        "states": states,
                    },
                    sort_keys=True,
                )
            )
        else:
            print(f"outbox:       {s.path}")
            print(f"depth:        {s.depth} events")
            print(f"bytes:        {s.bytes}")
            print(f"oldest age:   {s.oldest_age_s:.1f} s")
            print(f"max attempts: {s.max_attempts}")
            print("states:       " + ", ".join(f"{k}={v}" for k, v in states.items()))
        return _report_corruption(outbox)


def _list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        print("error: --limit must be at least 1")
        return 2
    with _open(args) as outbox:
        rows = outbox.rows(limit=args.limit)
        for r in rows:
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.created))
            if args.json:
                print(
                    json.dumps(
                        {
                            "id": r.id,
                            "key": r.key,
                            "topic": r.topic,
                            "size": len(r.payload),
                            "created": created,
                            "attempts": r.attempts,
                            "last_error": r.last_error,
                            "state": r.state,
                            "reason": r.reason,
                        },
                        sort_keys=True,
                    )
                )
            else:
                err = f"  last error: {r.last_error}" if r.last_error else ""
                if r.reason and r.reason != r.last_error:
                    err += f"  reason: {r.reason}"
                print(
                    f"{r.id:>8}  {created}  {r.state:<8}  attempts={r.attempts:<3} "
                    f"{len(r.payload):>7} B  {r.key}  {r.topic}{err}"
                )
        if not rows and not args.json:
            print("outbox is empty")
        return _report_corruption(outbox)


def _retry(args: argparse.Namespace) -> int:
    with _open(args) as outbox:
        if args.ids and args.all:
            print("error: give row ids or --all, not both")
            return 2
        n = outbox.retry(args.ids or None)
        if args.ids and n == 0:
            print(f"error: no row with id {' '.join(map(str, args.ids))}")
            return 1
        print(f"{n} rows will be sent at the next opportunity")
        return _report_corruption(outbox)
