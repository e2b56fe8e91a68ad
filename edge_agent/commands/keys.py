"""``edge-agent keys``: create and show the station signing key; manage a verifier trust store."""

from __future__ import annotations

import argparse
import json
import os
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_agent.commands import _keys_rotation
from edge_agent.commands._attest import add_attest_parser
from edge_agent.commands._keys_token import (
    add_token_flags,
    init_token_key,
    show_token_key,
    token_settings,
)
from edge_agent.config import load_config
from edge_agent.errors import ConfigError
from edge_agent.signing.algorithms import alg_name
from edge_agent.signing.keys import (
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    init_keys,
    load_public_key,
    public_key_pem,
)
from edge_agent.signing.signer import SoftwareSigner, key_id
from edge_agent.signing.trust import TrustStore, iso_utc, operator_name, parse_utc


def register(sub: Any) -> None:
    """Add ``keys init``, ``keys show``, ``keys trust``, ``keys rotate`` and ``keys retire``."""
    parser = sub.add_parser("keys", help="station signing keys and trust stores")
    commands = parser.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)

    init = commands.add_parser("init", help="create the station key pair and print its kid")
    init.add_argument("--dir", type=Path, default=None, help="key directory (default: config)")
    init.add_argument("--alg", choices=["ed25519", "p256"], default=None)
    init.add_argument("--force", action="store_true", help="replace an existing key")
    init.add_argument(
        "--pub-out", type=Path, default=None, help="with --pkcs11: write the public key PEM here"
    )
    add_token_flags(init)
    init.set_defaults(func=_init)

    show = commands.add_parser("show", help="print kid, algorithm and key paths")
    show.add_argument("--dir", type=Path, default=None, help="key directory (default: config)")
    show.add_argument("--legacy-alg-ids", action="store_true", default=None)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    add_token_flags(show)
    show.set_defaults(func=_show)

    trust = commands.add_parser("trust", help="add, revoke or list keys in a trust store")
    trust.add_argument("--store", type=Path, required=True, help="trust store JSON file")
    action = trust.add_mutually_exclusive_group()
    action.add_argument("--add", type=Path, metavar="PUB_PEM", help="public key file to trust")
    action.add_argument("--revoke", metavar="KID_HEX", help="mark a key id revoked")
    trust.add_argument("--station", default="", help="station the added key speaks for")
    trust.add_argument("--site", default="", help="site the added key speaks for")
    trust.add_argument("--not-before", default=None, help="ISO UTC time, e.g. 2026-01-01T00:00:00Z")
    trust.add_argument("--not-after", default=None, help="ISO UTC time")
    trust.add_argument(
        "--unrevoke", action="store_true", help="with --add: trust a revoked key again (recorded)"
    )
    trust.add_argument("--by", default=None, help="who un-revokes (default: the login name)")
    trust.set_defaults(func=_trust)
    _keys_rotation.register(commands)
    add_attest_parser(commands, add_token_flags)


def _init(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    token = token_settings(args, config)
    if token is not None:
        return init_token_key(token, force=args.force, pub_out=args.pub_out)
    settings = config.signing
    key_dir = args.dir if args.dir is not None else settings.key_dir
    if key_dir.exists() and not key_dir.is_dir():  # --force replaces keys, never a file
        raise ConfigError(f"{key_dir} is a file, not a key folder", key_path="--dir")
    kid = init_keys(key_dir, args.alg or settings.alg, force=args.force)
    print(kid.hex())
    return 0


def _show(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    settings = config.signing
    legacy = settings.legacy_alg_ids if args.legacy_alg_ids is None else args.legacy_alg_ids
    token = token_settings(args, config)
    if token is not None:
        return show_token_key(token, legacy=legacy, as_json=args.json)
    key_dir = args.dir if args.dir is not None else settings.key_dir
    pub_path, key_path = key_dir / PUBLIC_KEY_FILE, key_dir / PRIVATE_KEY_FILE
    public = load_public_key(pub_path)
    # The emitted alg follows from the key type; build the id the same way the signer does.
    alg = SoftwareSigner.alg_for(public, legacy_alg_ids=legacy)
    try:
        mode: str | None = f"{stat.S_IMODE(os.stat(key_path).st_mode):04o}"
    except FileNotFoundError:
        mode = None
    info = {
        "kid": key_id(public).hex(),
        "alg": alg_name(alg),
        "alg_id": alg,
        "location": "file",
        "public_key": str(pub_path),
        "private_key": str(key_path),
        "private_key_mode": mode,
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for name, value in info.items():
            print(f"{name}: {value if value is not None else '(missing)'}")
    return 0


def _time(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = parse_utc(text)
    except ValueError:
        raise ConfigError(f"not an ISO time: {text!r}", key_path=flag) from None
    if moment.tzinfo is None:
        raise ConfigError(f"must be UTC with a Z suffix, got {text!r}", key_path=flag)
    return moment


def _trust(args: argparse.Namespace) -> int:
    store = TrustStore.load(args.store, create=args.add is not None)
    if args.add is not None:
        pem = load_public_key(args.add)
        kid = store.add(
            public_key_pem(pem),
            station=args.station,
            site=args.site,
            not_before=_time(args.not_before, "--not-before"),
            not_after=_time(args.not_after, "--not-after"),
            unrevoke=args.unrevoke,
            by=args.by or operator_name(),
        )
        store.save()
        print(kid.hex())
        return 0
    if args.revoke is not None:
        store.revoke(args.revoke)
        store.save()
        print(f"revoked {args.revoke}")
        return 0
    for key in store.entries():
        window = " ".join(
            f"{label}={iso_utc(t)}"
            for label, t in (("from", key.not_before), ("until", key.not_after))
            if t is not None
        )
        state = "REVOKED" if key.revoked else "trusted"
        print(f"{key.kid.hex()} {state} {key.site or '-'}/{key.station or '-'} {window}".rstrip())
    return 0
