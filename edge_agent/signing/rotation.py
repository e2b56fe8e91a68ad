"""Key rotation statements: a station hands its identity over to a new key (pure, no I/O).

A rotation statement is two nested COSE_Sign1 messages made by ``sign1``, both bound to the
station's key topic: ``external_aad`` is the topic without its prefix, ``<site>/<station>/key``,
so the statement verifies the same on the site broker and upstream, where the gateway
re-publishes it under its ``upstream_prefix``:

- inner, signed by the NEW key (proof that the station holds it), over the body;
- outer, signed by the OLD key (the key the verifier trusts), whose payload is the inner
  message.

The body is deterministic CBOR::

    {"v": 1, "type": "key_rotation", "rotation_id": "<uuid7>", "site": "plant-a",
     "station": "st-01", "old_kid": h'<16>', "new_kid": h'<16>', "new_key": h'<SPKI DER>',
     "overlap_s": 604800, "issued": 1764921600123,
     "not_before": 1764921600000, "not_after": 1796457600000}     ; the last two optional

``overlap_s`` is how long the old key stays valid once a verifier accepts the statement (it
covers events signed just before the rotation and still on their way); ``not_before`` /
``not_after`` (ms since the epoch) bound the new key. Times are the station's clock, so
verifiers count the overlap from their own acceptance time, not from ``issued``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_agent.errors import SigningError, TrustStoreError, VerificationError
from edge_agent.signing.algorithms import PublicKey
from edge_agent.signing.cose import (
    COSE_SIGN1_TAG,
    EVENT_POLICY,
    KeyResolver,
    ResolvedKey,
    VerifyPolicy,
    sign1,
    verify_sign1,
)
from edge_agent.signing.signer import KID_LENGTH, Signer, key_id

ROTATION_POLICY = VerifyPolicy(
    name="key_rotation",
    require_tag=True,
    allowed_algs=EVENT_POLICY.allowed_algs,
    headers_protected=True,
    protected_labels=EVENT_POLICY.protected_labels,
    unprotected_labels=frozenset(),
    curves=EVENT_POLICY.curves,
    max_size=8 * 1024,
    preferred_encoding=True,
)
MAX_OVERLAP_S = 366 * 86400
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ROTATION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_MAX_INT = 2**63 - 1
_MAX_KEY_DER = 200  # SPKI of Ed25519 is 44 bytes, of P-256 91
_KEYS = frozenset(
    {
        "v",
        "type",
        "rotation_id",
        "site",
        "station",
        "old_kid",
        "new_kid",
        "new_key",
        "overlap_s",
        "issued",
        "not_before",
        "not_after",
    }
)


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """The content of a rotation statement."""

    rotation_id: str
    site: str
    station: str
    old_kid: bytes
    new_key: PublicKey
    overlap_s: int
    issued_ms: int
    not_before_ms: int | None = None
    not_after_ms: int | None = None

    @property
    def new_kid(self) -> bytes:
        """Key id of the new key."""
        return key_id(self.new_key)


@dataclass(frozen=True, slots=True)
class VerifiedRotation:
    """A statement whose two signatures checked out; ``key`` is the old key's trust entry."""

    rotation: KeyRotation
    key: ResolvedKey


def spki_der(public_key: PublicKey) -> bytes:
    """SubjectPublicKeyInfo DER of a public key."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def encode_rotation(rotation: KeyRotation) -> bytes:
    """Deterministic CBOR of the statement body."""
    body: dict[str, Any] = {
        "v": 1,
        "type": "key_rotation",
        "rotation_id": rotation.rotation_id,
        "site": rotation.site,
        "station": rotation.station,
        "old_kid": rotation.old_kid,
        "new_kid": rotation.new_kid,
        "new_key": spki_der(rotation.new_key),
        "overlap_s": rotation.overlap_s,
        "issued": rotation.issued_ms,
    }
    if rotation.not_before_ms is not None:
        body["not_before"] = rotation.not_before_ms
    if rotation.not_after_ms is not None:
        body["not_after"] = rotation.not_after_ms
    return cbor2.dumps(body, canonical=True)


def rotation_aad(site: str, station: str) -> bytes:
    """The external AAD binding a statement to its station's key topic (prefix left out)."""
    return f"{site}/{station}/key".encode()


def sign_rotation(rotation: KeyRotation, old: Signer, new: Signer) -> bytes:
    """The statement: inner COSE_Sign1 by ``new``, wrapped in one by ``old``, both bound to
    the key topic of the body's site and station."""
    if old.kid != rotation.old_kid:
        raise SigningError(f"old signer {old.kid.hex()} is not {rotation.old_kid.hex()}")
    if new.kid != rotation.new_kid:
        raise SigningError(f"new signer {new.kid.hex()} is not {rotation.new_kid.hex()}")
    if old.kid == new.kid:
        raise SigningError("a key cannot rotate to itself")
    # decoding our own body catches bad ids or times before anything is signed
    decode_rotation(encode_rotation(rotation))
    aad = rotation_aad(rotation.site, rotation.station)
    inner = sign1(encode_rotation(rotation), new, external_aad=aad)
    return sign1(inner, old, external_aad=aad)


def verify_rotation(
    message: bytes, keys: KeyResolver, *, site: str, station: str, at: datetime | None = None
) -> VerifiedRotation:
    """Check a statement that arrived on the key topic of ``site``/``station``: the old key's
    signature (trusted at ``at``), the body and the new key's signature; VerificationError
    (TrustStoreError for key decisions) with a stable reason otherwise."""
    aad = rotation_aad(site, station)
    outer = verify_sign1(message, keys, external_aad=aad, policy=ROTATION_POLICY, at=at)
    rotation = decode_rotation(_inner_payload(outer.payload))
    if outer.kid != rotation.old_kid:
        raise VerificationError(
            "kid_mismatch", f"signed by {outer.kid.hex()}, body names {rotation.old_kid.hex()}"
        )
    try:
        verify_sign1(
            outer.payload,
            _OnlyKey(rotation.new_kid, rotation.new_key),
            external_aad=aad,
            policy=ROTATION_POLICY,
        )
    except TrustStoreError:
        raise VerificationError(
            "kid_mismatch", "inner statement not signed by the new key"
        ) from None
    except VerificationError as exc:
        raise VerificationError(exc.reason, f"new key's signature: {exc.detail}") from None
    return VerifiedRotation(rotation=rotation, key=outer.key)


@dataclass(frozen=True, slots=True)
class _Resolved:
    public_key: PublicKey


class _OnlyKey:
    """Resolves exactly one key id (the new key named in the body)."""

    def __init__(self, kid: bytes, public_key: PublicKey) -> None:
        self._kid = kid
        self._key = _Resolved(public_key)

    def resolve(self, kid: bytes, *, at: datetime | None = None) -> ResolvedKey:
        if kid != self._kid:
            raise TrustStoreError("unknown_kid", f"kid {kid.hex()} is not the new key")
        return self._key


def _decode_exact(data: bytes, what: str) -> Any:
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream, allow_duplicate_keys=False).decode()
    except Exception as exc:  # cbor2 raises several unrelated types on bad input
        raise VerificationError("bad_payload", f"{what} is not CBOR: {exc}") from None
    if stream.tell() != len(data):
        raise VerificationError("bad_payload", f"bytes after the {what}")
    return item


def _inner_payload(inner: bytes) -> bytes:
    """The body bytes of the inner COSE_Sign1 (read here, verified after the key is known)."""
    item = _decode_exact(inner, "inner statement")
    if not isinstance(item, cbor2.CBORTag) or item.tag != COSE_SIGN1_TAG:
        raise VerificationError("bad_payload", "inner statement is not a tagged COSE_Sign1")
    value = item.value
    if not isinstance(value, list | tuple) or len(value) != 4 or not isinstance(value[2], bytes):
        raise VerificationError("bad_payload", "inner statement is not a COSE_Sign1")
    return value[2]


def decode_rotation(payload: bytes) -> KeyRotation:
    """Parse a statement body strictly; VerificationError("bad_payload") otherwise."""
    body = _decode_exact(payload, "rotation body")
    if not isinstance(body, dict) or type(body.get("v")) is not int or body["v"] != 1:
        raise VerificationError("bad_payload", "not a v1 statement")
    if body.get("type") != "key_rotation":
        raise VerificationError("bad_payload", "not a v1 key_rotation statement")
    extra = [k for k in body if k not in _KEYS]
    if extra:
        raise VerificationError("bad_payload", f"unknown field {extra[0]!r}")
    new_key = _public_key(body.get("new_key"))
    new_kid = _kid(body.get("new_kid"), "new_kid")
    if key_id(new_key) != new_kid:
        raise VerificationError("bad_payload", "new_kid is not the key id of new_key")
    old_kid = _kid(body.get("old_kid"), "old_kid")
    if old_kid == new_kid:
        raise VerificationError("bad_payload", "a key cannot rotate to itself")
    overlap = _count(body.get("overlap_s"), "overlap_s")
    if overlap > MAX_OVERLAP_S:
        raise VerificationError("bad_payload", f"overlap_s above {MAX_OVERLAP_S}")
    not_before = _optional_count(body, "not_before")
    not_after = _optional_count(body, "not_after")
    if not_before is not None and not_after is not None and not_after < not_before:
        raise VerificationError("bad_payload", "not_after before not_before")
    return KeyRotation(
        rotation_id=_text(body.get("rotation_id"), _ROTATION_ID, "rotation_id"),
        site=_text(body.get("site"), _ID, "site"),
        station=_text(body.get("station"), _ID, "station"),
        old_kid=old_kid,
        new_key=new_key,
        overlap_s=overlap,
        issued_ms=_count(body.get("issued"), "issued"),
        not_before_ms=not_before,
        not_after_ms=not_after,
    )


def peek_rotation(message: bytes) -> KeyRotation | None:
    """The body of a statement WITHOUT verifying it (the station reads its own), or None."""
    try:
        outer = _decode_exact(message, "statement")
        if not isinstance(outer, cbor2.CBORTag) or not isinstance(outer.value, list | tuple):
            return None
        if len(outer.value) != 4 or not isinstance(outer.value[2], bytes):
            return None
        return decode_rotation(_inner_payload(outer.value[2]))
    except VerificationError:
        return None


def peek_rotation_id(message: bytes) -> str | None:
    """The rotation_id of a statement WITHOUT verifying it (to address a rejection), or None."""
    try:
        outer = _decode_exact(message, "statement")
        if not isinstance(outer, cbor2.CBORTag) or not isinstance(outer.value, list | tuple):
            return None
        if len(outer.value) != 4 or not isinstance(outer.value[2], bytes):
            return None
        body = _decode_exact(_inner_payload(outer.value[2]), "rotation body")
    except VerificationError:
        return None
    rotation_id = body.get("rotation_id") if isinstance(body, dict) else None
    if isinstance(rotation_id, str) and _ROTATION_ID.fullmatch(rotation_id):
        return rotation_id
    return None


def _public_key(value: Any) -> PublicKey:
    if not isinstance(value, bytes) or not 0 < len(value) <= _MAX_KEY_DER:
        raise VerificationError("bad_payload", "new_key must be SPKI DER bytes")
    try:
        key = serialization.load_der_public_key(value)
    except Exception as exc:  # ValueError, UnsupportedAlgorithm, ...
        raise VerificationError("bad_payload", f"new_key is not an SPKI key: {exc}") from None
    if not (
        isinstance(key, Ed25519PublicKey)
        or (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1))
    ):
        raise VerificationError("bad_payload", f"new_key is a {type(key).__name__}")
    if spki_der(key) != value:  # one byte form per key (a BER variant would hash differently)
        raise VerificationError("bad_payload", "new_key is not in DER form")
    return key


def _kid(value: Any, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != KID_LENGTH:
        raise VerificationError("bad_payload", f"{what} must be {KID_LENGTH} bytes")
    return value


def _text(value: Any, rx: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not rx.fullmatch(value):
        raise VerificationError("bad_payload", f"{what} missing or malformed")
    return value


def _count(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_INT:
        raise VerificationError("bad_payload", f"{what} must be an integer 0..2^63-1")
    return value


def _optional_count(body: dict[str, Any], what: str) -> int | None:
    return _count(body[what], what) if what in body else None
