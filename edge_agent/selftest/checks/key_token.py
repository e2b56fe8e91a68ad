"""Signing key check for a key inside a PKCS#11 token: module, token, PIN, key, a signature."""

from __future__ import annotations

import os

from edge_agent.errors import (
    TokenError,
    TokenKeyError,
    TokenModuleError,
    TokenNotFoundError,
    TokenPinError,
)
from edge_agent.selftest.model import Outcome, failed, passed
from edge_agent.signing.settings import Pkcs11Settings
from edge_agent.tokens.pin import read_pin
from edge_agent.tokens.signer import TokenSigner, check_raw_signature


def _next_step(exc: TokenError, settings: Pkcs11Settings) -> str:
    module = settings.module
    if isinstance(exc, TokenModuleError):
        return (
            f"install the token's package (softhsm2, libtpm2-pkcs11-1 or the vendor's) or fix "
            f"signing.pkcs11.module ({module})"
        )
    if isinstance(exc, TokenNotFoundError):
        return (
            f"plug in / initialise the token, then list tokens: pkcs11-tool --module {module} "
            "--list-token-slots (a TPM: is /dev/tpmrm0 there? tpm2-pkcs11 also reads "
            "TPM2_PKCS11_STORE and TPM2_PKCS11_TCTI)"
        )
    if isinstance(exc, TokenPinError):
        return (
            "put the user PIN in the PIN file (not the SO PIN); a token locked after wrong PINs "
            f"is unlocked with the SO PIN: pkcs11-tool --module {module} --login --login-type so "
            "--init-pin"
        )
    if isinstance(exc, TokenKeyError):
        return (
            "fix signing.pkcs11.key_label, or create a key: edge-agent keys init --pkcs11 (a NEW "
            "kid: add its public key to every gateway's trust store)"
        )
    return f"see the token's log; test the module: pkcs11-tool --module {module} --list-slots"


def check_token_key(settings: Pkcs11Settings) -> Outcome:
    """PIN source safe, module loads, token present, PIN accepted, key found, signature verifies."""
    where = settings.describe()
    try:
        read_pin(settings)
    except TokenPinError as exc:
        source = (
            f"LoadCredential={settings.pin_credential}:/path/to/pin in the unit"
            if settings.pin_credential
            else f"install -m 600 -o $(id -un) /dev/stdin {settings.pin_file} <<< 'PIN'"
        )
        return failed(str(exc), f"provide the PIN owner-only: {source}")
    try:
        with TokenSigner(settings) as signer:
            challenge = os.urandom(32)
            good = check_raw_signature(signer.key.public_key, signer.sign(challenge), challenge)
            kid = signer.kid.hex()
    except TokenError as exc:
        return failed(str(exc), _next_step(exc, settings))
    if not good:
        return failed(
            f"{where}: a test signature does not verify with the token's public key",
            "the token returned a bad signature: replace the key (edge-agent keys init --pkcs11 "
            "--force) and report the token model",
        )
    return passed(f"{where}: PIN accepted, test signature verifies (kid {kid})")
