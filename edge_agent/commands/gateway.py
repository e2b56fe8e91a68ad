"""``edge-agent gateway``: run the site gateway, and manage its trust store of station keys."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig, load_config
from edge_agent.errors import ConfigError


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
    add.set_defaults(func=_trust_add)
    revoke = actions.add_parser("revoke", help="revoke a key by its key id (hex)")
    revoke.add_argument("kid")
    revoke.set_defaults(func=_trust_revoke)
    lst = actions.add_parser("list", help="print the trusted keys as JSON lines")
    lst.set_defaults(func=_trust_list)


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


def _trust_add(args: argparse.Namespace) -> int:
    from edge_agent.signing.trust import TrustStore

    store = TrustStore.load(_trust_path(args))
    try:
        pem = args.pubkey.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {args.pubkey}: {exc.strerror}") from None
    kid = store.add(
        pem,
        station=args.station,
        site=args.site,
        not_before=args.not_before,
        not_after=args.not_after,
    )
    store.save()
    print(kid.hex())
    return 0


def _trust_revoke(args: argparse.Namespace) -> int:
    from edge_agent.signing.trust import TrustStore

    store = TrustStore.load(_trust_path(args))
    store.revoke(args.kid.lower())
    store.save()
    print(f"revoked {args.kid.lower()}")
    return 0


def _trust_list(args: argparse.Namespace) -> int:
    from edge_agent.signing.trust import TrustStore, iso_utc

    for key in TrustStore.load(_trust_path(args)).entries():
        row = {
            "kid": key.kid.hex(),
            "site": key.site,
            "station": key.station,
            "not_before": iso_utc(key.not_before) if key.not_before else None,
            "not_after": iso_utc(key.not_after) if key.not_after else None,
            "revoked": key.revoked,
        }
        print(json.dumps(row, sort_keys=True))
    return 0


def _run(args: argparse.Namespace) -> int:
    from edge_agent.gateway.service import run_service

    config = _config(args)
    settings = config.gateway
    if args.trust_store:
        from dataclasses import replace

        settings = replace(settings, trust_store=Path(args.trust_store))
    return run_service(settings, metrics_host=config.metrics.host, metrics_port=config.metrics.port)
