"""Signed identification events: COSE_Sign1 over deterministic CBOR (see docs/signing.md).

Modules: ``cose`` (sign1 / verify_sign1, policies), ``events`` (sign_event / verify_event),
``signer`` (Signer protocol, SoftwareSigner, key_id), ``keys`` (station key files),
``trust`` (TrustStore, StaticKeys), ``algorithms`` (COSE algorithm ids and checks).
"""

# public modules; importing the package imports none of them
__all__ = [
    "algorithms",
    "cose",
    "events",
    "keys",
    "settings",
    "signer",
    "trust",
]
