"""Signing keys inside PKCS#11 tokens (SoftHSM2, a TPM 2.0 through tpm2-pkcs11, HSMs).

Modules: ``pin`` (the user PIN from an owner-only file or a systemd credential), ``library``
(loading a module once per process, finding the token, one login per token, resetting a
module whose token went away, error translation), ``keys`` (finding, creating, relabelling
and destroying the P-256 key pair), ``signer`` (``TokenSigner`` behind the ``Signer``
protocol, reopening the token when it comes back), ``keyring`` (``TokenKeyRing``: key rotation
inside the token), ``check`` (``config check`` of a token section), ``configured``
(``open_signer`` / ``open_keyring``: the configured file key or token key, never one in place
of the other).
"""

# public modules; importing the package imports none of them
__all__ = ["check", "configured", "keyring", "keys", "library", "pin", "signer"]
