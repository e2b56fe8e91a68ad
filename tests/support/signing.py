"""Signing test helpers: realistic events, vector keys, hand-made COSE messages."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_agent.event_codec import event_from_plain
from edge_agent.model import IdentificationEvent

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "schemas" / "examples"

_CURVES = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def vector_public_key(jwk: dict[str, str]) -> Any:
    """The public key of a cose-wg example key (EC with x/y, OKP with x_hex)."""
    if jwk["kty"] == "EC":
        x, y = int.from_bytes(_b64(jwk["x"]), "big"), int.from_bytes(_b64(jwk["y"]), "big")
        return ec.EllipticCurvePublicNumbers(x, y, _CURVES[jwk["crv"]]).public_key()
    raw = bytes.fromhex(jwk["x_hex"])
    return (
        Ed25519PublicKey.from_public_bytes(raw)
        if jwk["crv"] == "Ed25519"
        else Ed448PublicKey.from_public_bytes(raw)
    )


def load_vector(path: Path) -> dict[str, Any]:
    """One cose-wg example JSON."""
    return dict(json.loads(path.read_text(encoding="utf-8")))


def example_plain(name: str = "healthy-lfp") -> dict[str, Any]:
    """A schema example event (plain form) from schemas/examples/."""
    return dict(json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8")))


def example_event(kid_hex: str, name: str = "healthy-lfp") -> IdentificationEvent:
    """A realistic event (from the schema examples) re-keyed to ``kid_hex``."""
    return replace(event_from_plain(example_plain(name)), kid=kid_hex)


def make_sign1(
    protected: dict[Any, Any] | bytes,
    unprotected: dict[Any, Any],
    payload: bytes | None,
    signature: bytes,
    *,
    tag: int | None = 18,
) -> bytes:
    """Hand-build a COSE_Sign1 (for policy tests) without project code."""
    prot = (
        protected
        if isinstance(protected, bytes)
        else (cbor2.dumps(protected) if protected else b"")
    )
    body = [prot, unprotected, payload, signature]
    return bytes(cbor2.dumps(cbor2.CBORTag(tag, body) if tag is not None else body))


def hand_sig_structure(protected: bytes, external_aad: bytes, payload: bytes) -> bytes:
    """RFC 9052 section 4.4 Sig_structure, built by hand byte by byte (no cbor2)."""

    def bstr(data: bytes) -> bytes:
        n = len(data)
        if n < 24:
            head = bytes([0x40 | n])
        elif n < 256:
            head = bytes([0x58, n])
        elif n < 65536:
            head = bytes([0x59]) + n.to_bytes(2, "big")
        else:
            head = bytes([0x5A]) + n.to_bytes(4, "big")
        return head + data

    return b"\x84" + b"\x6aSignature1" + bstr(protected) + bstr(external_aad) + bstr(payload)
