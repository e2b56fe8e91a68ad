"""TPM attestation commands: ``keys attest`` (station) and ``gateway trust challenge`` /
``gateway trust add --attestation`` (gateway). The steps are in docs/signing.md."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.errors import AttestationError, ConfigError
from edge_agent.signing.trust import MAX_TRUST_BYTES, iso_utc, read_bounded

MAX_EVIDENCE_BYTES = 64 * 1024


def add_attest_parser(commands: Any, add_token_flags: Any) -> None:
    """``keys attest``."""
    attest = commands.add_parser(
        "attest", help="TPM evidence that the token key lives in the TPM (tpm2-pkcs11)"
    )
    attest.add_argument("--out", type=Path, required=True, help="write the evidence JSON here")
    attest.add_argument("--nonce", default="", help="hex nonce given by the gateway (optional)")
    attest.add_argument(
        "--activate",
        type=Path,
        default=None,
        metavar="CHALLENGE",
        help="answer the gateway's credential challenge instead (writes the answer to --out)",
    )
    add_token_flags(attest)
    attest.set_defaults(func=keys_attest, dir=None)


def read_json(path: Path, what: str, limit: int = MAX_EVIDENCE_BYTES) -> dict[str, Any]:
    """A small JSON object file; ConfigError if missing or malformed."""
    raw = read_bounded(path, limit=limit, what=what)
    if raw is None:
        raise ConfigError(f"{what} {path} does not exist")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ConfigError(f"{what} {path} is not JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} is not a JSON object")
    return data


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _nonce(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"nonce must be hex, got {text!r}", key_path="--nonce") from None


def keys_attest(args: argparse.Namespace) -> int:
    """Write attestation evidence (or a challenge answer) for the station's token key."""
    from edge_agent.commands._keys_token import module_stderr, token_settings
    from edge_agent.config import load_config
    from edge_agent.tokens import attestation
    from edge_agent.tokens.keys import find_key
    from edge_agent.tokens.library import TokenSession
    from edge_agent.tokens.pin import read_pin

    tcti = attestation.tcti()
    if args.activate is not None:
        challenge = read_json(args.activate, "challenge")
        credential = attestation.activate(challenge, tcti_text=tcti)
        answer = {"format": "edge-agent/tpm-credential-answer", "kid": challenge.get("kid")}
        _write_json(args.out, {**answer, "credential": credential.hex()})
        print(f"answer written to {args.out}")
        return 0
    settings = token_settings(args, load_config(args.config))
    if settings is None:
        raise ConfigError(
            "keys attest needs a tpm2-pkcs11 token key (--pkcs11 or [signing.pkcs11])"
        )
    nonce = _nonce(args.nonce)
    with module_stderr(), TokenSession(settings) as token:
        public = find_key(token).public_key
    evidence = attestation.produce_evidence(
        public,
        token_label=settings.token_label,
        pin=read_pin(settings),
        nonce=nonce,
        store=attestation.store_dir(),
        tcti_text=tcti,
    )
    _write_json(args.out, evidence)
    print(evidence["kid"])
    return 0


def _pending_path(trust_path: Path) -> Path:
    return trust_path.with_name(trust_path.name + ".challenges.json")


def _verified(args: argparse.Namespace, pem: bytes | None) -> tuple[dict[str, Any], Any]:
    """(evidence, AttestationResult) for --attestation with --tpm-ca."""
    from edge_agent.signing.keys import parse_public_key
    from edge_agent.signing.tpm_attestation import load_ca_file, verify_evidence
    from edge_agent.signing.tpm_structures import parse_public

    if args.tpm_ca is None:
        raise ConfigError(
            "--attestation needs --tpm-ca (the TPM vendor CA file)", key_path="--tpm-ca"
        )
    ca_pem = read_bounded(args.tpm_ca, limit=MAX_EVIDENCE_BYTES, what="TPM CA file")
    if ca_pem is None:
        raise ConfigError(f"TPM CA file {args.tpm_ca} does not exist")
    evidence = read_json(args.attestation, "attestation evidence")
    if pem is not None:
        station_key = parse_public_key(pem)
    else:  # challenge: the key is the one the evidence certifies (checked again at add)
        try:
            station_key = parse_public(
                bytes.fromhex(str(evidence.get("key_public")))
            ).ec_public_key()
        except ValueError:
            raise AttestationError("format", "evidence key_public unreadable") from None
    nonce = _nonce(args.nonce) if getattr(args, "nonce", None) else None
    result = verify_evidence(
        evidence, station_key=station_key, tpm_cas=load_ca_file(ca_pem), nonce=nonce
    )
    return evidence, result


def trust_challenge(args: argparse.Namespace, trust_path: Path) -> int:
    """Verify evidence and write a credential challenge for the station; keep its hash."""
    from edge_agent.gateway.rotations import trust_file_lock
    from edge_agent.signing.tpm_attestation import make_challenge

    evidence, result = _verified(args, None)
    challenge, credential = make_challenge(evidence)
    pending_path = _pending_path(trust_path)
    with trust_file_lock(trust_path):
        pending = (
            read_json(pending_path, "challenges", MAX_TRUST_BYTES) if pending_path.exists() else {}
        )
        pending[result.kid] = {
            "credential_sha256": hashlib.sha256(credential).hexdigest(),
            "ak_name": result.ak_name,
            "issued": iso_utc(datetime.now(UTC)),
        }
        fd = os.open(pending_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(pending, indent=2) + "\n")
    _write_json(args.out, challenge)
    print(f"challenge for {result.kid} written to {args.out}")
    return 0


def attestation_for_add(args: argparse.Namespace, pem: bytes, trust_path: Path) -> Any:
    """The verified AttestationResult to record with ``gateway trust add`` (None without
    --attestation); with --activation the AK-EK binding is checked against the kept challenge."""
    import dataclasses
    import logging

    from edge_agent.signing.tpm_attestation import check_activation

    if args.attestation is None:
        if args.activation is not None or args.tpm_ca is not None:
            raise ConfigError("--activation and --tpm-ca go with --attestation")
        return None
    _, result = _verified(args, pem)
    if args.activation is None:
        logging.getLogger(__name__).warning(
            "key %s: evidence checked without --activation: the AK-EK binding is NOT proven, "
            "recorded as attested: false",
            result.kid,
        )
        return result
    answer = read_json(args.activation, "activation answer")
    pending_path = _pending_path(trust_path)
    pending = (
        read_json(pending_path, "challenges", MAX_TRUST_BYTES) if pending_path.exists() else {}
    )
    kept = pending.get(result.kid)
    if not isinstance(kept, dict) or kept.get("ak_name") != result.ak_name:
        raise AttestationError(
            "activation", f"no challenge issued for kid {result.kid} and this AK"
        )
    try:
        credential = bytes.fromhex(str(answer.get("credential")))
    except ValueError:
        raise AttestationError("activation", "the answer's credential is not hex") from None
    check_activation(str(kept.get("credential_sha256")), credential)
    return dataclasses.replace(result, ak_bound_to_ek=True, attested=True)


def forget_challenge(trust_path: Path, kid: str) -> None:
    """Drop the kept challenge of a key once its activation is recorded."""
    pending_path = _pending_path(trust_path)
    if not pending_path.exists():
        return
    pending = read_json(pending_path, "challenges", MAX_TRUST_BYTES)
    if pending.pop(kid, None) is not None:
        pending_path.write_text(json.dumps(pending, indent=2) + "\n")
