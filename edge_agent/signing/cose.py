"""COSE_Sign1 (RFC 9052 section 4.2) on cbor2 + cryptography: build and verify.

The verifier turns any input into either a :class:`Verified` or a
:class:`~edge_agent.errors.VerificationError` whose ``reason`` is a short stable token:
``too_large``, ``not_cbor``, ``trailing_bytes``, ``wrong_tag``, ``malformed``, ``non_canonical``,
``header_not_allowed``, ``alg_missing``, ``alg_not_allowed``, ``kid_missing``, ``unknown_kid``,
``revoked``, ``not_yet_valid``, ``expired``, ``key_alg_mismatch``, ``bad_signature``.
``edge_agent.signing.events.verify_event`` adds ``bad_payload``, ``kid_mismatch`` and
``station_mismatch``.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import cbor2

from edge_agent.errors import SigningError, VerificationError
from edge_agent.signing.algorithms import (
    ALGORITHMS,
    ED25519,
    EDDSA,
    ES256,
    ESP256,
    AlgSpec,
    PublicKey,
    curve_of,
    key_fits,
    verify_signature,
)
from edge_agent.signing.signer import Signer

log = logging.getLogger(__name__)

COSE_SIGN1_TAG = 18
HDR_ALG = 1
HDR_CRIT = 2
HDR_CONTENT_TYPE = 3
HDR_KID = 4
_SIG_LEN = {ED25519: 64, EDDSA: 64, ESP256: 64, ES256: 64}
_MAX_HEADER_DEPTH = 8
_MAP_TYPES = (dict, cbor2.frozendict)  # what cbor2 returns; skips a slow ABC isinstance


class ResolvedKey(Protocol):
    """What a key resolver hands back: at least the public key."""

    @property
    def public_key(self) -> PublicKey:
        """The public key to verify with."""
        ...


class KeyResolver(Protocol):
    """Finds the public key for a key id (a trust store, or a fixed map in tests)."""

    def resolve(self, kid: bytes, *, at: datetime | None = None) -> ResolvedKey:
        """The key for ``kid`` valid at ``at``; raises TrustStoreError otherwise."""
        ...


@dataclass(frozen=True, kw_only=True)
class VerifyPolicy:
    """What a verifier accepts beyond a correct signature."""

    name: str
    require_tag: bool
    allowed_algs: frozenset[int]
    headers_protected: bool  # alg and kid must sit in the protected header
    protected_labels: frozenset[int] | None  # None: any label
    unprotected_labels: frozenset[int] | None
    # Event keys are Ed25519 or P-256 only, even under the polymorphic EdDSA / ES256 ids.
    curves: frozenset[str] | None
    max_size: int | None
    # Reject outer encodings that differ from the preferred one (non-minimal lengths,
    # indefinite arrays), so one event has exactly one byte form (hashes, de-duplication).
    preferred_encoding: bool = False


EVENT_POLICY = VerifyPolicy(
    name="event",
    require_tag=True,
    allowed_algs=frozenset({ED25519, ESP256, EDDSA, ES256}),
    headers_protected=True,
    protected_labels=frozenset({HDR_ALG, HDR_KID}),
    unprotected_labels=frozenset(),
    curves=frozenset({"ed25519", "secp256r1"}),
    max_size=256 * 1024,
    preferred_encoding=True,
)

GENERIC_POLICY = VerifyPolicy(
    name="generic",
    require_tag=False,
    allowed_algs=frozenset(ALGORITHMS),
    headers_protected=False,
    protected_labels=None,
    unprotected_labels=None,
    curves=None,
    max_size=None,
)


@dataclass(frozen=True, kw_only=True)
class Verified:
    """A COSE_Sign1 message whose signature checked out."""

    payload: bytes
    kid: bytes
    alg: int
    protected: dict[Any, Any]
    unprotected: dict[Any, Any]
    key: ResolvedKey


def _bstr(data: bytes) -> bytes:
    """CBOR byte string in preferred (shortest-head) encoding."""
    n = len(data)
    if n < 24:
        head = bytes((0x40 | n,))
    elif n < 0x100:
        head = bytes((0x58, n))
    elif n < 0x10000:
        head = b"\x59" + n.to_bytes(2, "big")
    elif n < 0x100000000:
        head = b"\x5a" + n.to_bytes(4, "big")
    else:
        head = b"\x5b" + n.to_bytes(8, "big")
    return head + data


# The fixed CBOR heads: array(4) + text(10) "Signature1"; tag 18 + array(4); empty map.
_SIG1_HEAD = b"\x84\x6aSignature1"
_TAG18_ARRAY4 = b"\xd2\x84"
_EMPTY_MAP = b"\xa0"


def sig_structure(protected: bytes, external_aad: bytes, payload: bytes) -> bytes:
    """The bytes that are signed: ``["Signature1", protected, external_aad, payload]``."""
    # Written out by hand: same bytes as cbor2.dumps of the array, without the encoder cost
    # on every event (tests compare both).
    return _SIG1_HEAD + _bstr(protected) + _bstr(external_aad) + _bstr(payload)


def encode_sign1(protected: bytes, payload: bytes, signature: bytes) -> bytes:
    """Tagged COSE_Sign1 with an empty unprotected map, in preferred encoding."""
    return _TAG18_ARRAY4 + _bstr(protected) + _EMPTY_MAP + _bstr(payload) + _bstr(signature)


@functools.lru_cache(maxsize=64)
def protected_header(alg: int, kid: bytes) -> bytes:
    """Deterministic encoding of ``{1: alg, 4: kid}``."""
    return bytes(cbor2.dumps({HDR_ALG: alg, HDR_KID: kid}, canonical=True))


def sign1(payload: bytes, signer: Signer, *, external_aad: bytes = b"") -> bytes:
    """A tagged COSE_Sign1 with alg and kid in the protected header and nothing unprotected."""
    if not isinstance(payload, bytes | bytearray) or not isinstance(
        external_aad, bytes | bytearray
    ):
        raise SigningError("payload and external_aad must be bytes")
    payload = bytes(payload)
    protected = protected_header(signer.alg, signer.kid)
    signature = signer.sign(sig_structure(protected, bytes(external_aad), payload))
    expected = _SIG_LEN.get(signer.alg)
    if expected is not None and len(signature) != expected:
        raise SigningError(f"signer returned {len(signature)} bytes, expected {expected}")
    return encode_sign1(protected, payload, signature)


def _decode_one(data: bytes, what: str, max_depth: int | None = None) -> Any:
    """Decode exactly one CBOR item; typed errors for garbage and trailing bytes."""
    stream = io.BytesIO(data)
    try:
        kwargs: dict[str, Any] = {"allow_duplicate_keys": False}
        if max_depth is not None:
            kwargs["max_depth"] = max_depth
        item = cbor2.CBORDecoder(stream, **kwargs).decode()
    except Exception as exc:  # cbor2 raises assorted types (and tag decoders more) on garbage
        reason = "not_cbor" if what == "message" else "malformed"
        raise VerificationError(reason, f"{what}: {type(exc).__name__}: {exc}") from None
    if stream.tell() != len(data):
        raise VerificationError("trailing_bytes", f"{len(data) - stream.tell()} bytes after {what}")
    return item


def _bstr_at(data: bytes, i: int) -> tuple[bytes, int] | None:
    """The byte string whose head starts at ``data[i]`` and the index after it, if it is one."""
    if i >= len(data) or data[i] >> 5 != 2:
        return None
    info = data[i] & 31
    if info < 24:
        n, i = info, i + 1
    elif 24 <= info <= 27:
        width = 1 << (info - 24)
        n, i = int.from_bytes(data[i + 1 : i + 1 + width], "big"), i + 1 + width
    else:
        return None
    return (data[i : i + n], i + n) if i + n <= len(data) else None


def _preferred_sign1(message: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(protected, payload, signature) of a message that is exactly ``encode_sign1`` of them
    (tag 18, empty unprotected map, preferred heads); None for anything else, which the CBOR
    decoder then reads (and refuses with its reason)."""
    if message[:2] != _TAG18_ARRAY4:
        return None
    protected = _bstr_at(message, 2)
    if protected is None or message[protected[1] : protected[1] + 1] != _EMPTY_MAP:
        return None
    payload = _bstr_at(message, protected[1] + 1)
    signature = None if payload is None else _bstr_at(message, payload[1])
    if signature is None or signature[1] != len(message):
        return None
    parts = protected[0], payload[0], signature[0]  # type: ignore[index]
    return parts if encode_sign1(*parts) == message else None


def _split(message: bytes, policy: VerifyPolicy) -> list[Any]:
    if not isinstance(message, bytes | bytearray | memoryview):
        raise VerificationError("malformed", f"message must be bytes, got {type(message).__name__}")
    message = bytes(message)
    if policy.max_size is not None and len(message) > policy.max_size:
        raise VerificationError("too_large", f"{len(message)} bytes > {policy.max_size}")
    if policy.preferred_encoding:
        # the one form an event may have, read without the CBOR decoder (same result)
        parts = _preferred_sign1(message)
        if parts is not None:
            return [parts[0], {}, parts[1], parts[2]]
    item = _decode_one(message, "message")
    if isinstance(item, cbor2.CBORTag):
        if item.tag != COSE_SIGN1_TAG:
            raise VerificationError("wrong_tag", f"tag {item.tag}, expected {COSE_SIGN1_TAG}")
        item = item.value
    elif policy.require_tag:
        raise VerificationError("wrong_tag", "untagged; COSE_Sign1 tag 18 required")
    if not isinstance(item, list | tuple) or len(item) != 4:
        raise VerificationError("malformed", "COSE_Sign1 must be an array of 4 items")
    protected, unprotected, payload, signature = item
    if not isinstance(protected, bytes):
        raise VerificationError("malformed", "protected header must be a byte string")
    if type(unprotected) not in _MAP_TYPES and not isinstance(unprotected, Mapping):
        raise VerificationError("malformed", "unprotected header must be a map")
    if payload is None:
        raise VerificationError("malformed", "detached payloads are not supported")
    if not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise VerificationError("malformed", "payload and signature must be byte strings")
    # (a non-empty unprotected map fails the header policy below with a clearer reason)
    check_encoding = policy.preferred_encoding and not unprotected
    if check_encoding and encode_sign1(protected, payload, signature) != message:
        raise VerificationError("non_canonical", "envelope is not in preferred CBOR encoding")
    return [protected, dict(unprotected), payload, signature]


def _decode_protected(protected_bytes: bytes) -> tuple[tuple[Any, Any], ...]:
    """Decoded protected header as items."""
    protected = _decode_one(protected_bytes, "protected header", _MAX_HEADER_DEPTH)
    if not isinstance(protected, Mapping):
        raise VerificationError("malformed", "protected header must encode a map")
    return tuple(protected.items())


# A station repeats its protected header on every event; event headers are 21 bytes, and the
# size cap keeps hostile large headers from filling the cache.
_decode_protected_cached = functools.lru_cache(maxsize=256)(_decode_protected)
_CACHED_HEADER_MAX = 64


def _headers(protected_bytes: bytes, unprotected: dict[Any, Any], policy: VerifyPolicy) -> Any:
    protected: Any = {}
    if protected_bytes:
        small = len(protected_bytes) <= _CACHED_HEADER_MAX
        decode = _decode_protected_cached if small else _decode_protected
        protected = dict(decode(protected_bytes))
    for label in (*protected, *unprotected):
        if type(label) not in (int, str):
            raise VerificationError("malformed", f"header label {label!r} is not an int or text")
    both = set(protected) & set(unprotected)
    if both:
        raise VerificationError(
            "malformed", f"labels in both header buckets: {sorted(map(repr, both))}"
        )
    for labels, allowed, bucket in (
        (protected, policy.protected_labels, "protected"),
        (unprotected, policy.unprotected_labels, "unprotected"),
    ):
        if HDR_CRIT in labels:
            raise VerificationError("header_not_allowed", "crit: no extensions are understood")
        if allowed is not None:
            # alg/kid left unprotected get the clearer alg_missing / kid_missing later on
            moved = (
                {HDR_ALG, HDR_KID}
                if bucket == "unprotected" and policy.headers_protected
                else set()
            )
            extra = [k for k in labels if k not in allowed and k not in moved]
            if extra:
                raise VerificationError("header_not_allowed", f"{bucket} label {extra[0]!r}")
    return protected


def _pick(
    label: int, protected: dict[Any, Any], unprotected: dict[Any, Any], policy: VerifyPolicy
) -> Any:
    if label in protected:
        return protected[label]
    if not policy.headers_protected:
        return unprotected.get(label)
    return None


def _algorithm(
    protected: dict[Any, Any], unprotected: dict[Any, Any], policy: VerifyPolicy
) -> AlgSpec:
    alg = _pick(HDR_ALG, protected, unprotected, policy)
    if alg is None:
        where = "protected header" if policy.headers_protected else "headers"
        raise VerificationError("alg_missing", f"no alg in the {where}")
    spec = ALGORITHMS.get(alg) if isinstance(alg, int) and not isinstance(alg, bool) else None
    if spec is None or alg not in policy.allowed_algs:
        raise VerificationError("alg_not_allowed", f"alg {alg!r} under the {policy.name} policy")
    return spec


# (protected header bytes, id(policy)) -> (policy, header items, algorithm, kid) of headers
# that passed the policy with nothing unprotected: a station repeats its header on every event
_CHECKED_HEADERS: dict[tuple[bytes, int], tuple[VerifyPolicy, tuple[Any, ...], AlgSpec, Any]] = {}


def _protected_only(protected_bytes: bytes, policy: VerifyPolicy) -> tuple[Any, AlgSpec, Any]:
    """Header items, algorithm and kid of a protected header under ``policy`` (nothing
    unprotected): the checks of ``_headers`` and ``_algorithm``, done once per header."""
    key = (protected_bytes, id(policy))
    seen = _CHECKED_HEADERS.get(key)
    if seen is not None and seen[0] is policy:
        return seen[1], seen[2], seen[3]
    protected = _headers(protected_bytes, {}, policy)
    spec = _algorithm(protected, {}, policy)
    kid = _pick(HDR_KID, protected, {}, policy)
    if len(_CHECKED_HEADERS) >= 256:
        _CHECKED_HEADERS.clear()
    _CHECKED_HEADERS[key] = (policy, tuple(protected.items()), spec, kid)
    return tuple(protected.items()), spec, kid


def verify_sign1(
    message: bytes,
    keys: KeyResolver,
    *,
    external_aad: bytes = b"",
    policy: VerifyPolicy = EVENT_POLICY,
    at: datetime | None = None,
) -> Verified:
    """Check a COSE_Sign1 against the policy and the resolver's keys; VerificationError if not."""
    protected_bytes, unprotected, payload, signature = _split(message, policy)
    if not unprotected and len(protected_bytes) <= _CACHED_HEADER_MAX:
        items, spec, kid = _protected_only(protected_bytes, policy)
        protected = dict(items)
    else:
        protected = _headers(protected_bytes, unprotected, policy)
        spec = _algorithm(protected, unprotected, policy)
        kid = _pick(HDR_KID, protected, unprotected, policy)
    if kid is None:
        where = "protected header" if policy.headers_protected else "headers"
        raise VerificationError("kid_missing", f"no kid in the {where}")
    if not isinstance(kid, bytes):
        raise VerificationError("malformed", "kid must be a byte string")
    resolved = keys.resolve(kid, at=at)
    key = resolved.public_key
    if not key_fits(spec, key) or (
        policy.curves is not None and curve_of(key) not in policy.curves
    ):
        raise VerificationError(
            "key_alg_mismatch", f"{spec.name} with a {curve_of(key) or 'unknown'} key"
        )
    aad = bytes(external_aad)
    ok = verify_signature(spec, key, sig_structure(protected_bytes, aad, payload), signature)
    if not ok and not protected and protected_bytes:
        # An empty protected map may arrive as h'A0' although it was signed as h'' (RFC 9052
        # section 3 requires the zero-length form); both carry the same (empty) headers.
        ok = verify_signature(spec, key, sig_structure(b"", aad, payload), signature)
    if not ok:
        raise VerificationError(
            "bad_signature", f"{spec.name} signature does not verify for kid {kid.hex()}"
        )
    return Verified(
        payload=payload,
        kid=kid,
        alg=spec.alg,
        protected=protected,
        unprotected=unprotected,
        key=resolved,
    )
