"""Signing keys inside PKCS#11 tokens (SoftHSM2, a TPM 2.0 through tpm2-pkcs11, HSMs).

Modules: ``pin`` (the user PIN from an owner-only file or a systemd credential), ``library``
(loading a module once per process, finding the token, logging in, error translation),
``keys`` (finding and creating the P-256 key pair), ``signer`` (``TokenSigner`` behind the
``Signer`` protocol), ``configured`` (``open_signer``: the configured file key or token key, never
one in place of the other).
"""

# public modules; importing the package imports none of them
__all__ = ["configured", "keys", "library", "pin", "signer"]
