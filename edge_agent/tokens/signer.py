"""``TokenSigner``: ESP256 (or legacy ES256) signatures made inside a PKCS#11 token."""

from __future__ import annotations

import hashlib
import threading

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Mechanism
from pkcs11 import exceptions as p11

from edge_agent.errors import TokenKeyError
from edge_agent.signing.algorithms import ES256, ESP256, PublicKey
from edge_agent.signing.settings import Pkcs11Settings
from edge_agent.signing.signer import key_id
from edge_agent.tokens.keys import TokenKey, find_key
from edge_agent.tokens.library import TokenSession, context, translate

_SELF_TEST = b"edge-agent token self-test"


def check_raw_signature(public_key: ec.EllipticCurvePublicKey, raw: bytes, data: bytes) -> bool:
    """Whether ``raw`` (r||s, 64 bytes) is a valid ECDSA P-256/SHA-256 signature of ``data``."""
    if len(raw) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


class TokenSigner:
    """Signs with a P-256 key that never leaves its token (CKM_ECDSA over a SHA-256 digest).

    One session per signer, logged in at open; a lock serialises signatures because a PKCS#11
    session runs one operation at a time. Opening signs a test message and verifies it with
    the public key, so a mismatched key pair fails at start, not at the first event.
    """

    def __init__(self, settings: Pkcs11Settings, *, legacy_alg_ids: bool = False) -> None:
        self.settings = settings
        self._alg = ES256 if legacy_alg_ids else ESP256
        self._lock = threading.Lock()
        self._token = TokenSession(settings)
        try:
            self.key: TokenKey = find_key(self._token)
            self._kid = key_id(self.key.public_key)
            if not check_raw_signature(self.key.public_key, self.sign(_SELF_TEST), _SELF_TEST):
                raise TokenKeyError(
                    f"key {settings.key_label!r} in token {settings.token_label!r}: a test "
                    "signature does not verify with its public key",
                    **context(settings),
                )
        except BaseException:
            self._token.close()
            raise

    @property
    def alg(self) -> int:
        """COSE algorithm id this signer emits (-9 ESP256, or -7 ES256 with legacy ids)."""
        return self._alg

    @property
    def kid(self) -> bytes:
        """16-byte key id of the token's public key (same rule as for key files)."""
        return self._kid

    @property
    def public_key(self) -> PublicKey:
        """The public key read from the token."""
        return self.key.public_key

    @property
    def location(self) -> str:
        """Where the key lives, for logs: token, label and module."""
        return self.settings.describe()

    def sign(self, data: bytes) -> bytes:
        """Raw r||s (64 bytes) over SHA-256(``data``), made inside the token."""
        digest = hashlib.sha256(data).digest()
        with self._lock:
            try:
                raw = self.key.private.sign(digest, mechanism=Mechanism.ECDSA)
            except p11.PKCS11Error as exc:
                raise translate(exc, self.settings, "signing") from None
        if len(raw) != 64:
            raise TokenKeyError(
                f"token {self.settings.token_label!r} returned a {len(raw)}-byte signature "
                "(CKM_ECDSA on P-256 gives 64)",
                **context(self.settings),
            )
        return bytes(raw)

    def close(self) -> None:
        """Close the session (the module is finalised when no other signer uses it)."""
        with self._lock:
            self._token.close()

    def __enter__(self) -> TokenSigner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
