"""``edge-agent keys rotate|retire``: hand the station identity to a new key, drop old keys.

``rotate`` asks the running station service over its control socket (it signs, so it must be
the one to switch); without a service it does the same in this process: the statement is in
the outbox when it returns and goes out with the next ``run``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import TYPE_CHECKING, Any

from edge_agent.commands._args import seconds
from edge_agent.config import AgentConfig, check_data_dir, load_config
from edge_agent.errors import ControlSocketAccessError, StationError, TokenError

if TYPE_CHECKING:
    from edge_agent.station.rotation import KeyRing


def register(commands: Any) -> None:
    """Add ``keys rotate`` and ``keys retire`` to the ``keys`` subcommands."""
    rotate = commands.add_parser(
        "rotate", help="make a new station key and send the signed rotation statement"
    )
    rotate.add_argument("--alg", choices=["ed25519", "p256"], default=None)
    rotate.add_argument(
        "--overlap",
        type=seconds,
        default=None,
        help="seconds the gateway keeps accepting the old key (default signing.rotation_overlap_s)",
    )
    rotate.add_argument(
        "--status", action="store_true", help="only print the pending and retired keys"
    )
    rotate.add_argument("--json", action="store_true", help="machine-readable output")
    rotate.set_defaults(func=_rotate)

    retire = commands.add_parser(
        "retire", help="delete the private keys of rotated-away keys whose overlap has ended"
    )
    retire.add_argument("--force", action="store_true", help="also those still in their overlap")
    retire.set_defaults(func=_retire)


def _rotate(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.status:
        return _status(config, as_json=args.json)
    from edge_agent.station.control import request_rotate, socket_path

    overlap = None if args.overlap is None else int(args.overlap)
    path = socket_path(config.station.data_dir)
    answer: dict[str, Any] | None = None
    if path.exists():
        try:
            answer = asyncio.run(request_rotate(path, args.alg, overlap))
        except ControlSocketAccessError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except StationError:  # a socket left behind by a killed service
            answer = None
    if answer is None:
        answer = _rotate_here(config, args.alg, overlap)
    if not answer.get("ok"):
        print(f"error: {answer.get('error')}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, sort_keys=True))
    else:
        state = "switched" if answer["switched"] else "pending (switches on the gateway's receipt)"
        print(
            f"rotation {answer['rotation_id']}: {answer['old_kid']} -> {answer['new_kid']} {state}"
        )
    return 0


def _rotate_here(config: AgentConfig, alg: str | None, overlap: int | None) -> dict[str, Any]:
    from edge_agent.station.rotation import KeyRotator
    from edge_agent.tokens.configured import open_keyring
    from edge_agent.uplink.outbox import Outbox, outbox_path
    from edge_agent.uplink.topics import StationTopics

    check_data_dir(config.station.data_dir)
    signing, uplink = config.signing, config.uplink
    topics = StationTopics(
        config.station.site, config.station.station, prefix=uplink.mqtt.topic_prefix
    )
    receipts = uplink.receipts_required
    with (
        contextlib.closing(open_keyring(signing)) as keys,
        Outbox(
            outbox_path(uplink.outbox, config.station.data_dir),
            uplink.outbox,
            receipts=receipts,
            receipt_timeout_s=uplink.receipt_timeout_s,
        ) as outbox,
    ):
        rotator = KeyRotator(
            keys=keys,
            signer=keys.active(),
            topics=topics,
            enqueue=outbox.add_many,
            receipts=receipts,
            on_switch=lambda _signer: None,
            overlap_s=signing.rotation_overlap_s,
        )
        try:
            started = rotator.rotate(alg=alg or signing.alg, overlap_s=overlap)  # type: ignore[arg-type]
        except (StationError, TokenError) as exc:
            return {"ok": False, "error": str(exc)}
    return {
        "ok": True,
        "rotation_id": started.rotation_id,
        "old_kid": started.old_kid,
        "new_kid": started.new_kid,
        "switched": started.switched,
    }


def _status(config: AgentConfig, *, as_json: bool) -> int:
    from edge_agent.tokens.configured import open_keyring

    with contextlib.closing(open_keyring(config.signing)) as keys:
        info = _status_info(keys)
    if as_json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"active: {info['active']}")
    pending = info["pending"]
    if pending:
        print(f"pending: {pending['kid']} (rotation {pending['rotation_id']})")
    for old in info["retired"]:
        state = f"private key kept ({old['private_key']})" if old["private_key"] else "retired"
        print(
            f"rotated: {old['kid']} -> {old['rotated_to']} at {old['rotated_at']}, "
            f"overlap until {old['retire_after']} ({state})"
        )
    return 0


def _status_info(keys: KeyRing) -> dict[str, Any]:
    from edge_agent.signing.rotation import peek_rotation

    info: dict[str, Any] = {"active": keys.active().kid.hex(), "pending": None, "retired": []}
    if keys.is_pending():
        statement = keys.statement()
        rotation = peek_rotation(statement) if statement else None
        info["pending"] = {
            "kid": keys.pending_signer().kid.hex(),
            "rotation_id": rotation.rotation_id if rotation else None,
        }
    for old in keys.retired():
        info["retired"].append(
            {
                "kid": old.kid,
                "rotated_to": old.rotated_to,
                "rotated_at": old.rotated_at,
                "retire_after": old.retire_after,
                "private_key": old.private_key,
            }
        )
    return info


def _retire(args: argparse.Namespace) -> int:
    from edge_agent.tokens.configured import open_keyring

    config = load_config(args.config)
    with contextlib.closing(open_keyring(config.signing)) as keys:
        for kid in keys.retire(force=args.force):
            print(f"retired {kid}")
        waiting = [k for k in keys.retired() if k.private_key is not None]
    for key in waiting:
        print(f"kept {key.kid} until {key.retire_after} (--force to delete it now)")
    return 0
