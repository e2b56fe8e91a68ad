"""COSE signature algorithms: ids, key checks and raw signature conversion (RFC 9053, 9864)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

PublicKey = Ed25519PublicKey | Ed448PublicKey | ec.EllipticCurvePublicKey

# RFC 9864 fully-specified ids and the older polymorphic ones (RFC 9053).
ED25519 = -19
ESP256 = -9
EDDSA = -8
ES256 = -7
ES384 = -35
ES512 = -36
ESP384 = -51
ESP512 = -52
ED448 = -53


@dataclass(frozen=True)
class AlgSpec:
    """What one COSE algorithm id means: family, hash and the curves it may run on."""

    alg: int
    name: str
    family: str  # "eddsa" or "ecdsa"
    curves: frozenset[str]  # allowed key curves: "ed25519", "ed448", "secp256r1", ...
    hash_name: str = ""  # ECDSA digest


_EC_ANY = frozenset({"secp256r1", "secp384r1", "secp521r1"})

ALGORITHMS: dict[int, AlgSpec] = {
    ED25519: AlgSpec(ED25519, "Ed25519", "eddsa", frozenset({"ed25519"})),
    ED448: AlgSpec(ED448, "Ed448", "eddsa", frozenset({"ed448"})),
    EDDSA: AlgSpec(EDDSA, "EdDSA", "eddsa", frozenset({"ed25519", "ed448"})),
    ESP256: AlgSpec(ESP256, "ESP256", "ecdsa", frozenset({"secp256r1"}), "sha256"),
    ESP384: AlgSpec(ESP384, "ESP384", "ecdsa", frozenset({"secp384r1"}), "sha384"),
    ESP512: AlgSpec(ESP512, "ESP512", "ecdsa", frozenset({"secp521r1"}), "sha512"),
    # The polymorphic ECDSA ids name only the hash; the curve comes from the key.
    ES256: AlgSpec(ES256, "ES256", "ecdsa", _EC_ANY, "sha256"),
    ES384: AlgSpec(ES384, "ES384", "ecdsa", _EC_ANY, "sha384"),
    ES512: AlgSpec(ES512, "ES512", "ecdsa", _EC_ANY, "sha512"),
}

# Built once: constructing ECDSA(SHA256()) per verification shows up in the benchmark.
_ECDSA: dict[str, ec.ECDSA] = {
    "sha256": ec.ECDSA(hashes.SHA256()),
    "sha384": ec.ECDSA(hashes.SHA384()),
    "sha512": ec.ECDSA(hashes.SHA512()),
}


def alg_name(alg: int) -> str:
    """Registered name of a COSE algorithm id (or the number as text)."""
    spec = ALGORITHMS.get(alg)
    return spec.name if spec else str(alg)


def _key_family(key: object) -> str:
    if isinstance(key, Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, Ed448PublicKey):
        return "ed448"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return "ec"
    return ""


# Concrete key class -> family. isinstance against cryptography's ABCs costs about a
# microsecond per check, which showed up in the per-message verification cost.
_FAMILY_BY_TYPE: dict[type, str] = {}


def curve_of(key: object) -> str:
    """Curve token of a public or private key ("ed25519", "secp256r1", ...; "" if unknown)."""
    family = _FAMILY_BY_TYPE.get(type(key))
    if family is None:
        family = _FAMILY_BY_TYPE.setdefault(type(key), _key_family(key))
    if family == "ec":
        return str(key.curve.name)  # type: ignore[attr-defined]
    return family


def key_fits(spec: AlgSpec, key: object) -> bool:
    """True when ``key`` is a public key the algorithm can verify with."""
    return curve_of(key) in spec.curves


def _coord_len(curve: ec.EllipticCurve) -> int:
    return (curve.key_size + 7) // 8


def der_to_raw(der: bytes, curve: ec.EllipticCurve) -> bytes:
    """ECDSA DER signature to the fixed-size r||s form COSE uses."""
    r, s = decode_dss_signature(der)
    n = _coord_len(curve)
    return r.to_bytes(n, "big") + s.to_bytes(n, "big")


def verify_signature(spec: AlgSpec, key: PublicKey, data: bytes, signature: bytes) -> bool:
    """Check a raw COSE signature (``key`` must fit ``spec``, see key_fits); False if bad."""
    try:
        # The caller has checked key_fits(spec, key), so the family decides the key type.
        if spec.family == "eddsa":
            cast(Ed25519PublicKey | Ed448PublicKey, key).verify(signature, data)
            return True
        key = cast(ec.EllipticCurvePublicKey, key)
        n = _coord_len(key.curve)
        if len(signature) != 2 * n:
            return False
        r = int.from_bytes(signature[:n], "big")
        s = int.from_bytes(signature[n:], "big")
        if r == 0 or s == 0:
            return False
        key.verify(encode_dss_signature(r, s), data, _ECDSA[spec.hash_name])
        return True
    except InvalidSignature:
        return False
