"""The configured signer and key ring: the token when ``pkcs11`` is set, else the key files;
never one in place of the other."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.signing.keyring import FileKeyRing
from edge_agent.signing.keys import load_signer
from edge_agent.signing.settings import Pkcs11Settings, SigningSettings
from edge_agent.signing.signer import Signer
from edge_agent.tokens.keyring import TokenKeyRing
from edge_agent.tokens.signer import TokenSigner

if TYPE_CHECKING:
    from edge_agent.station.rotation import KeyRing


def open_signer(
    *, key_dir: Path | None, pkcs11: Pkcs11Settings | None, legacy_alg_ids: bool = False
) -> Signer:
    """A TokenSigner for ``pkcs11``, else the key file signer of ``key_dir``.

    A token that fails raises its TokenError: the key file (even one that exists) is never
    used instead, so no event is signed by a key other than the configured one.
    """
    if pkcs11 is not None:
        return TokenSigner(pkcs11, legacy_alg_ids=legacy_alg_ids)
    if key_dir is None:
        raise ValueError("open_signer needs key_dir or pkcs11")
    return load_signer(key_dir, legacy_alg_ids=legacy_alg_ids)


def close_signer(signer: Signer) -> None:
    """Release what a signer holds (a token session); key file signers hold nothing."""
    if isinstance(signer, TokenSigner):
        signer.close()


def open_keyring(signing: SigningSettings) -> KeyRing:
    """The station's key ring: inside the token when ``pkcs11`` is set, else the key files.

    Opening finishes a key switch a crash cut short, before any key is read.
    """
    if signing.pkcs11 is not None:
        return TokenKeyRing(signing.pkcs11, signing.key_dir, legacy_alg_ids=signing.legacy_alg_ids)
    return FileKeyRing(signing.key_dir, legacy_alg_ids=signing.legacy_alg_ids)
