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
        if isinstance(private_key, Ed25519PrivateKey):
            self._alg = EDDSA if legacy_alg_ids else ED25519
        elif isinstance(private_key, ec.EllipticCurvePrivateKey) and isinstance(
            private_key.curve, ec.SECP256R1
        ):
            self._alg = ES256 if legacy_alg_ids else ESP256
        else:
            raise SigningError(f"unsupported private key: {type(private_key).__name__}")
        self._key = private_key
        self._public = private_key.public_key()
        self._kid = key_id(self._public)
        self._ecdsa = ec.ECDSA(hashes.SHA256())

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
        key = self._key
        if isinstance(key, Ed25519PrivateKey):
            return key.sign(data)
        return der_to_raw(key.sign(data, self._ecdsa), key.curve)
