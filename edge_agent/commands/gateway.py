"""``edge-agent gateway``: run the site gateway, manage its trust store of station keys and
its dead letters (``rejected list|show|replay``)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.config import AgentConfig, load_config
from edge_agent.errors import ConfigError

if TYPE_CHECKING:
    from edge_agent.gateway.deadletters import DeadLetterStore


def register(sub: Any) -> None:
    """Add ``gateway`` (run the service) and ``gateway trust add|revoke|list``."""
    parser = sub.add_parser("gateway", help="run the site gateway; manage its trust store")
    parser.add_argument(
        "--config", dest="gateway_config", type=Path, default=None, help="TOML config file"
    )
    parser.add_argument(
        "--trust-store", type=Path, default=None, help="trust store JSON (default from config)"
    )
    parser.set_defaults(func=_run)
    commands = parser.add_subparsers(dest="gateway_command", metavar="SUBCOMMAND")
    trust = commands.add_parser("trust", help="station keys the gateway accepts")
    actions = trust.add_subparsers(dest="trust_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="trust a station public key (PEM)")
    add.add_argument("pubkey", type=Path, help="station public key PEM file")
    add.add_argument("--station", required=True)
    add.add_argument("--site", required=True)
    add.add_argument("--not-before", type=_utc, default=None, help="ISO 8601 UTC time")
    add.add_argument("--not-after", type=_utc, default=None, help="ISO 8601 UTC time")
    add.add_argument(
        "--unrevoke", action="store_true", help="trust a revoked key again (recorded in the store)"
    )
    add.add_argument("--by", default=None, help="who un-revokes (default: the login name)")
    add.add_argument(
        "--attestation", type=Path, default=None, help="TPM evidence of the key (keys attest)"
    )
    add.add_argument("--tpm-ca", type=Path, default=None, help="TPM vendor CA file (PEM)")
    add.add_argument("--nonce", default=None, help="hex nonce the evidence must carry")
    add.add_argument(
        "--activation", type=Path, default=None, help="the station's answer to trust challenge"
    )
    add.set_defaults(func=_trust_add)
    challenge = actions.add_parser(
        "challenge", help="verify TPM evidence and write a credential challenge for the station"
    )
    challenge.add_argument("attestation", type=Path, help="evidence file from keys attest")
    challenge.add_argument("--tpm-ca", type=Path, required=True, help="TPM vendor CA file (PEM)")
    challenge.add_argument("--nonce", default=None, help="hex nonce the evidence must carry")
    challenge.add_argument("--out", type=Path, required=True, help="challenge file to write")
    challenge.set_defaults(func=_trust_challenge)
    revoke = actions.add_parser("revoke", help="revoke a key by its key id (hex)")
    revoke.add_argument("kid")
    revoke.set_defaults(func=_trust_revoke)
    lst = actions.add_parser("list", help="print the trusted keys as JSON lines")
    lst.set_defaults(func=_trust_list)
    _register_rejected(commands)


def _register_rejected(commands: Any) -> None:
    rejected = commands.add_parser("rejected", help="rejected messages kept (dead letters)")
    actions = rejected.add_subparsers(dest="rejected_command", metavar="ACTION", required=True)
    lst = actions.add_parser("list", help="one line per kept rejected message")
    lst.add_argument("--reason", default=None, help="only this reason token")
    lst.add_argument("--all", action="store_true", help="include those replayed and accepted")
    lst.add_argument("--json", action="store_true", help="JSON lines")
    lst.set_defaults(func=_rejected_list)
    show = actions.add_parser("show", help="one message as JSON, payload in hex")
    show.add_argument("id", type=int)
    show.set_defaults(func=_rejected_show)
    replay = actions.add_parser(
        "replay", help="re-admit messages through the full checks (after fixing the cause)"
    )
    replay.add_argument("ids", type=int, nargs="*", metavar="ID")
    replay.add_argument("--reason", default=None, help="every held message with this reason")
    replay.add_argument("--all", action="store_true", help="every held message")
    replay.add_argument(
        "--wait",
        type=float,
        default=30.0,
        help="seconds to wait for the running gateway's verdicts (0: only mark them)",
    )
    replay.set_defaults(func=_rejected_replay)


def _utc(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset or Z: {text!r}")
    return moment


def _config(args: argparse.Namespace) -> AgentConfig:
    return load_config(args.gateway_config or args.config)


def _trust_path(args: argparse.Namespace) -> Path:
    return Path(args.trust_store) if args.trust_store else _config(args).gateway.trust_store


def _trust_challenge(args: argparse.Namespace) -> int:
    from edge_agent.commands._attest import trust_challenge

    return trust_challenge(args, _trust_path(args))


def _trust_add(args: argparse.Namespace) -> int:
    from edge_agent.commands._attest import attestation_for_add, forget_challenge
    from edge_agent.gateway.rotations import trust_file_lock
    from edge_agent.signing.trust import TrustStore, operator_name

    try:
        pem = args.pubkey.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {args.pubkey}: {exc.strerror}") from None
    path = _trust_path(args)
    attestation = attestation_for_add(args, pem, path)  # refused here before the store changes
    with trust_file_lock(path):  # the running gateway writes rotations under the same lock
        store = TrustStore.load(path, create=True)
        kid = store.add(
            pem,
            station=args.station,
            site=args.site,
            not_before=args.not_before,
            not_after=args.not_after,
            unrevoke=args.unrevoke,
            by=args.by or operator_name(),
            attestation=attestation,
        )
        store.save()
    if attestation is not None and attestation.ak_bound_to_ek:
        forget_challenge(path, kid.hex())
    print(kid.hex())
    return 0


def _trust_revoke(args: argparse.Namespace) -> int:
    from edge_agent.gateway.rotations import trust_file_lock
    from edge_agent.signing.trust import TrustStore

    path = _trust_path(args)
    with trust_file_lock(path):  # the running gateway writes rotations under the same lock
        store = TrustStore.load(path)
        store.revoke(args.kid.lower())
        store.save()
    print(f"revoked {args.kid.lower()}")
    return 0


def _trust_list(args: argparse.Namespace) -> int:
    from edge_agent.signing.trust import TrustStore, iso_utc

    store = TrustStore.load(_trust_path(args))
    for key in store.entries():
        row: dict[str, object] = {
            "kid": key.kid.hex(),
            "site": key.site,
            "station": key.station,
            "not_before": iso_utc(key.not_before) if key.not_before else None,
            "not_after": iso_utc(key.not_after) if key.not_after else None,
            "revoked": key.revoked,
        }
        entry = store.entry(key.kid.hex())
        if entry is not None and entry.unrevoked:
            row["unrevoked"], row["unrevoked_by"] = entry.unrevoked, entry.unrevoked_by
        if entry is not None and (entry.rotated_from or entry.rotated_to):
            # the chain: which key this one replaced / was replaced by, when, by which statement
            row["rotated_from"], row["rotated_to"] = entry.rotated_from, entry.rotated_to
            row["rotated_at"], row["rotation_id"] = entry.rotated_at, entry.rotation_id
            ended = key.not_after is not None and key.not_after < datetime.now(UTC)
            row["retired"] = bool(entry.rotated_to) and ended
        if entry is not None and entry.attestation is not None:
            att = entry.attestation
            row["attested"], row["ak_bound_to_ek"] = att.attested, att.ak_bound_to_ek
            row["ek_issuer"], row["attested_at"] = att.ek_issuer, att.verified
        print(json.dumps(row, sort_keys=True))
    return 0


def _dead_letters(args: argparse.Namespace) -> DeadLetterStore:
    from edge_agent.gateway.deadletters import DeadLetterStore

    settings = _config(args).gateway
    return DeadLetterStore(settings.dead_letters_path, create=False)


def _rejected_list(args: argparse.Namespace) -> int:
    store = _dead_letters(args)
    try:
        for row in store.rows(reason=args.reason, include_accepted=args.all):
            info = row.summary()
            if args.json:
                print(json.dumps(info, sort_keys=True))
            else:
                print(
                    f"{row.id} {row.state} {row.reason} x{row.count} {info['last_seen']}"
                    f" {row.topic} {row.detail}".rstrip()
                )
    finally:
        store.close()
    return 0


def _rejected_show(args: argparse.Namespace) -> int:
    store = _dead_letters(args)
    try:
        row = store.get(args.id)
    finally:
        store.close()
    if row is None:
        raise ConfigError(f"no dead letter {args.id}")
    print(json.dumps({**row.summary(), "payload_hex": row.payload.hex()}, indent=2))
    return 0


def _rejected_replay(args: argparse.Namespace) -> int:
    import time

    if not (args.ids or args.reason or args.all):
        raise ConfigError("give dead letter IDs, --reason R or --all")
    store = _dead_letters(args)
    try:
        marked = store.mark_for_replay(ids=args.ids, reason=args.reason, all_held=args.all)
        if not marked:
            print("nothing to replay (no held dead letter matches)")
            return 1
        print(f"marked {len(marked)} for replay")
        end = time.monotonic() + args.wait
        rows = [store.get(i) for i in marked]
        while any(r is not None and r.state == "replay" for r in rows):
            if time.monotonic() >= end:
                break
            time.sleep(0.1)
            rows = [store.get(i) for i in marked]
    finally:
        store.close()
    if args.wait <= 0:
        return 0
    failed = 0
    for row_id, row in zip(marked, rows, strict=True):
        if row is None:
            print(f"{row_id} gone (dropped by the dead-letter limits)")
            failed += 1
        elif row.state == "accepted":
            print(f"{row_id} accepted")
        elif row.state == "replay":
            print(f"{row_id} pending: no verdict yet (is the gateway running?)")
            failed += 1
        else:
            print(f"{row_id} rejected {row.reason}: {row.detail}")
            failed += 1
    return 1 if failed else 0


def _run(args: argparse.Namespace) -> int:
    from edge_agent.gateway.service import run_service

    config = _config(args)
    settings = config.gateway
    if args.trust_store:
        from dataclasses import replace

        settings = replace(settings, trust_store=Path(args.trust_store))
    return run_service(settings, metrics_host=config.metrics.host, metrics_port=config.metrics.port)
