"""``TokenSigner``: ESP256 (or legacy ES256) signatures made inside a PKCS#11 token."""

from __future__ import annotations

import hashlib
import logging
import threading

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Mechanism
from pkcs11 import exceptions as p11

from edge_agent.errors import TokenError, TokenKeyError
from edge_agent.signing.algorithms import ES256, ESP256, PublicKey
from edge_agent.signing.settings import Pkcs11Settings
from edge_agent.signing.signer import key_id
from edge_agent.tokens.keys import TokenKey, find_key
from edge_agent.tokens.library import (
    TokenSession,
    calls,
    context,
    generation,
    reset_module,
    translate,
)

log = logging.getLogger(__name__)

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

    When the token goes away (unplugged, TPM daemon stopped) a signature fails with a
    TokenError and the session is dropped; the next ``sign`` resets the module and opens the
    token again, and signs only if the configured label still names the same key (same kid):
    nothing is ever signed by another key, and signing resumes by itself when the token is back.
    """

    def __init__(self, settings: Pkcs11Settings, *, legacy_alg_ids: bool = False) -> None:
        self.settings = settings
        self._alg = ES256 if legacy_alg_ids else ESP256
        self._lock = threading.Lock()
        self._closed = False
        self._lost: str | None = None  # why the token is unusable now (logged once)
        self._token: TokenSession | None = None
        self.key: TokenKey = self._open()
        self._kid = key_id(self.key.public_key)

    def _open(self) -> TokenKey:
        with calls:
            return self._open_locked()

    def _open_locked(self) -> TokenKey:
        token = TokenSession(self.settings)
        try:
            key = find_key(token)
            raw = self._sign_with(key, _SELF_TEST)
            if not check_raw_signature(key.public_key, raw, _SELF_TEST):
                raise TokenKeyError(
                    f"key {self.settings.key_label!r} in token {self.settings.token_label!r}: a "
                    "test signature does not verify with its public key",
                    **context(self.settings),
                )
        except BaseException:
            token.close()
            raise
        self._token = token
        return key

    def _reopen(self) -> None:
        # the dead session goes first; its module generation says whether to reset it
        seen = self._token.generation if self._token is not None else generation(self.settings)
        if self._token is not None:
            self._token.close()
            self._token = None
        reset_module(self.settings, seen)
        key = self._open()
        if key_id(key.public_key) != self._kid:
            self._token_close()
            raise TokenKeyError(
                f"key {self.settings.key_label!r} in token {self.settings.token_label!r} is "
                f"now {key_id(key.public_key).hex()}, not {self._kid.hex()}: not signing with it",
                **context(self.settings),
            )
        self.key = key

    def _token_close(self) -> None:
        if self._token is not None:
            self._token.close()
            self._token = None

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

    def _sign_with(self, key: TokenKey, data: bytes) -> bytes:
        digest = hashlib.sha256(data).digest()
        try:
            with calls:
                raw = key.private.sign(digest, mechanism=Mechanism.ECDSA)
        except p11.PKCS11Error as exc:
            raise translate(exc, self.settings, "signing") from None
        if len(raw) != 64:
            raise TokenKeyError(
                f"token {self.settings.token_label!r} returned a {len(raw)}-byte signature "
                "(CKM_ECDSA on P-256 gives 64)",
                **context(self.settings),
            )
        return bytes(raw)

    def sign(self, data: bytes) -> bytes:
        """Raw r||s (64 bytes) over SHA-256(``data``), made inside the token."""
        with self._lock:
            if self._closed:
                raise TokenError(f"{self.settings.describe()}: signer is closed")
            try:
                # a stale session's handles may number another session's objects after a reset
                if self._token is None or self._token.stale:
                    self._reopen()
                raw = self._sign_with(self.key, data)
            except TokenError as exc:
                self._token_close()  # the next signature opens the token again
                if self._lost is None:
                    log.error("token key unusable, nothing is signed until it is back: %s", exc)
                self._lost = str(exc)
                raise
            if self._lost is not None:
                log.warning("token key %s is back: signing again", self._kid.hex())
                self._lost = None
            return raw

    def close(self) -> None:
        """Close the session (the module is finalised when no other signer uses it)."""
        with self._lock:
            self._closed = True
            self._token_close()

    def __enter__(self) -> TokenSigner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
