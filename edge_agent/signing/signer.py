"""The signer seam (software keys now, TPM / secure element later) and key ids."""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge_agent.errors import SigningError
from edge_agent.signing.algorithms import ED25519, EDDSA, ES256, ESP256, PublicKey, der_to_raw

KID_LENGTH = 16


def key_id(public_key: PublicKey) -> bytes:
    """First 16 bytes of SHA-256 of the raw Ed25519 key or the SEC1-compressed P-256 point."""
    if isinstance(public_key, Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    elif isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raw = public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )
    else:
        raise SigningError(f"unsupported key type for a station key: {type(public_key).__name__}")
    return hashlib.sha256(raw).digest()[:KID_LENGTH]


@runtime_checkable
class Signer(Protocol):
    """Anything that signs with a fixed COSE algorithm and key id (software, TPM, ATECC608)."""

    @property
    def alg(self) -> int:
        """COSE algorithm id put in the protected header."""
        ...

    @property
    def kid(self) -> bytes:
        """Key id put in the protected header."""
        ...

    @property
    def public_key(self) -> PublicKey:
        """The public half, for key ids and trust stores."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Signature over ``data`` in COSE form (Ed25519 64 bytes; ECDSA raw r||s)."""
        ...


SigningKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class SoftwareSigner:
    """A signer holding an Ed25519 or P-256 private key in process memory."""

    def __init__(self, private_key: SigningKey, *, legacy_alg_ids: bool = False) -> None:
        self._alg = self.alg_for(private_key, legacy_alg_ids=legacy_alg_ids)
        self._public = private_key.public_key()
        self._kid = key_id(self._public)
        self._ecdsa = ec.ECDSA(hashes.SHA256())
        # decided once here rather than by isinstance on every signature
        self._ed = private_key if isinstance(private_key, Ed25519PrivateKey) else None
        self._ec = private_key if isinstance(private_key, ec.EllipticCurvePrivateKey) else None

    @staticmethod
    def alg_for(key: object, *, legacy_alg_ids: bool = False) -> int:
        """COSE alg id for an Ed25519 or P-256 key (private or public); SigningError otherwise."""
        if isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
            return EDDSA if legacy_alg_ids else ED25519
        if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and isinstance(
            key.curve, ec.SECP256R1
        ):
            return ES256 if legacy_alg_ids else ESP256
        raise SigningError(f"unsupported key: {type(key).__name__} (need Ed25519 or P-256)")

    @property
    def alg(self) -> int:
        """COSE algorithm id this signer emits."""
        return self._alg

    @property
    def kid(self) -> bytes:
        """16-byte key id of the public key."""
        return self._kid

    @property
    def public_key(self) -> PublicKey:
        """The public key."""
        return self._public

    def sign(self, data: bytes) -> bytes:
        """Sign ``data``; ECDSA signatures come back as raw r||s (64 bytes)."""
        if self._ed is not None:
            return self._ed.sign(data)
        assert self._ec is not None
        return der_to_raw(self._ec.sign(data, self._ecdsa), self._ec.curve)
