"""``edge-agent verify``: check one signed identification event and print its body."""

from __future__ import annotations

import argparse
import json
import string
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cbor2

from edge_agent.errors import ConfigError, VerificationError
from edge_agent.signing.algorithms import alg_name
from edge_agent.signing.cose import KeyResolver
from edge_agent.signing.events import verify_event
from edge_agent.signing.keys import parse_public_key
from edge_agent.signing.trust import (
    MAX_TRUST_BYTES,
    StaticKeys,
    TrustStore,
    parse_utc,
    read_bounded,
)

MAX_INPUT = 1024 * 1024
_HEX = frozenset(string.hexdigits)


def register(sub: Any) -> None:
    """Add ``verify``."""
    parser = sub.add_parser("verify", help="verify a COSE_Sign1 event (raw or hex) and print it")
    parser.add_argument("file", nargs="?", default="-", help="message file, or - for stdin")
    parser.add_argument("--trust", type=Path, required=True, help="trust store JSON or public PEM")
    parser.add_argument("--json", action="store_true", help="print a JSON verdict object")
    parser.add_argument("--at", default=None, help="verify as of this UTC time (default now)")
    parser.add_argument(
        "--topic", default="", help="MQTT topic the event was bound to (COSE external_aad)"
    )
    parser.set_defaults(func=_verify)


def read_message(source: str) -> bytes:
    """Raw bytes, or hex text (whitespace allowed) turned into bytes."""
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_INPUT + 1)
        else:
            with Path(source).open("rb") as fh:
                data = fh.read(MAX_INPUT + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT:
        raise ConfigError(f"{source}: larger than {MAX_INPUT} bytes")
    text = b"".join(data.split())
    if text and len(text) % 2 == 0 and all(chr(c) in _HEX for c in text):
        return bytes.fromhex(text.decode("ascii"))
    return data


def load_trust(path: Path) -> KeyResolver:
    """A trust store file, or a single public key PEM trusted without station binding."""
    data = read_bounded(path, limit=MAX_TRUST_BYTES, what="trust file")
    if data is None:
        raise ConfigError(f"cannot read trust file {path}: No such file or directory")
    if data.lstrip().startswith(b"-----BEGIN"):
        return StaticKeys.of(parse_public_key(data, source=str(path)))
    return TrustStore.load(path)


def jsonable(value: Any) -> Any:
    """Decoded CBOR as JSON-ready data: bytes as hex, maps with text keys."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def topic_bytes(topic: str) -> bytes:
    """The topic as UTF-8, as MQTT carries it; undecodable command-line bytes are refused."""
    try:
        return topic.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError("not valid UTF-8, so no MQTT topic", key_path="--topic") from None


def _verify(args: argparse.Namespace) -> int:
    external_aad = topic_bytes(args.topic)
    keys = load_trust(args.trust)
    message = read_message(args.file)
    at = None
    if args.at is not None:
        try:
            at = parse_utc(args.at)
        except ValueError:
            raise ConfigError(f"not an ISO time: {args.at!r}", key_path="--at") from None
    try:
        result = verify_event(message, keys, at=at, external_aad=external_aad)
    except VerificationError as exc:
        if args.json:
            print(json.dumps({"valid": False, "reason": exc.reason, "detail": exc.detail}))
        else:
            print(f"invalid: {exc.reason}" + (f" ({exc.detail})" if exc.detail else ""))
        return 1
    body = jsonable(cbor2.loads(result.payload))
    if args.json:
        verdict = {
            "valid": True,
            "kid": result.kid.hex(),
            "alg": alg_name(result.alg),
            "alg_id": result.alg,
            "body": body,
        }
        print(json.dumps(verdict, indent=2, ensure_ascii=False))
    else:
        print(json.dumps(body, indent=2, ensure_ascii=False))
    return 0
