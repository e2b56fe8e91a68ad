"""Verify TPM attestation evidence of a station key (no TPM needed): see docs/signing.md.

The evidence format is described in ``edge_agent.tokens.attestation``. Checks, in order: the
evidence names the station key (same kid, same public point); the EK certificate chains to a
configured TPM-vendor CA and carries the EK public area given; the AK is a restricted signing
key whose qualified name puts it in the endorsement hierarchy; the TPMS_ATTEST is a certify
signed by the AK; the certified Name is the station key's public area, which has fixedTPM,
fixedParent and sensitiveDataOrigin, and its qualified name puts it under the given parent in
the owner hierarchy; the qualifying data binds the kid and the nonce.

The AK-EK binding (that the AK lives in the TPM the EK certificate names) is proven only by a
credential activation (``make_challenge`` then ``check_activation``); without it the result
says ``ak_bound_to_ek: False``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from edge_agent.errors import AttestationError
from edge_agent.signing.algorithms import PublicKey
from edge_agent.signing.signer import key_id
from edge_agent.signing.tpm_structures import (
    AK_ATTRIBUTES,
    ALG_SHA256,
    FIXED_PARENT,
    FIXED_TPM,
    RH_ENDORSEMENT,
    RH_OWNER,
    SENSITIVE_DATA_ORIGIN,
    SIGN,
    TpmFormatError,
    TpmPublic,
    b2,
    ek_template,
    hierarchy_qn,
    make_credential,
    parse_certify,
    parse_ecdsa_signature,
    parse_public,
    qualified_name,
    qualifying_data,
)

EVIDENCE_FORMAT = "edge-agent/tpm-attestation"
REQUIRED_KEY_ATTRIBUTES = FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | SIGN
MAX_CHAIN = 4


@dataclass(frozen=True, kw_only=True)
class AttestationResult:
    """What verified evidence shows, as recorded with the key in the trust store.

    ``attested`` is true only when the AK-EK binding was proven too (credential activation);
    evidence that passed every other check is recorded with ``attested: false``."""

    attested: bool = False
    kid: str
    ek_subject: str
    ek_issuer: str
    ek_public_sha256: str
    ak_name: str
    key_name: str
    key_attributes: tuple[str, ...]
    nonce: str
    verified: str
    ak_bound_to_ek: bool = False


def load_ca_file(pem: bytes) -> list[x509.Certificate]:
    """The TPM-vendor CA certificates (PEM, one or more); AttestationError if none."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise AttestationError("tpm_ca", f"not a PEM certificate file: {exc}") from None
    return certs


def _hex(evidence: Mapping[str, Any], name: str) -> bytes:
    value = evidence.get(name)
    if not isinstance(value, str):
        raise AttestationError("format", f"evidence field {name!r} is missing")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise AttestationError("format", f"evidence field {name!r} is not hex") from None


def _public(evidence: Mapping[str, Any], name: str) -> TpmPublic:
    try:
        public = parse_public(_hex(evidence, name))
    except TpmFormatError as exc:
        raise AttestationError("format", f"{name}: {exc}") from None
    if public.name_alg != ALG_SHA256:
        raise AttestationError("format", f"{name}: name algorithm is not SHA-256")
    return public


def _chain(ek_cert: x509.Certificate, cas: list[x509.Certificate], at: datetime) -> None:
    """EK certificate -> issuers from the CA file -> a self-signed root from the CA file."""
    current = ek_cert
    for _ in range(MAX_CHAIN):
        if not current.not_valid_before_utc <= at <= current.not_valid_after_utc:
            raise AttestationError("ek_chain", f"{current.subject.rfc4514_string()} not valid now")
        issuer = next((c for c in cas if c.subject == current.issuer and _issued(current, c)), None)
        if issuer is None:
            raise AttestationError(
                "ek_chain",
                f"EK certificate issuer {current.issuer.rfc4514_string()!r} is not in the "
                "TPM CA file (or did not sign it)",
            )
        if issuer.subject == issuer.issuer and _issued(issuer, issuer):
            if not issuer.not_valid_before_utc <= at <= issuer.not_valid_after_utc:
                raise AttestationError("ek_chain", "the TPM CA root is not valid now")
            return
        current = issuer
    raise AttestationError("ek_chain", "EK certificate chain longer than expected")


def _issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def verify_evidence(
    evidence: Mapping[str, Any],
    *,
    station_key: PublicKey,
    tpm_cas: list[x509.Certificate],
    nonce: bytes | None = None,
    at: datetime | None = None,
) -> AttestationResult:
    """Check evidence for ``station_key``; AttestationError(reason) on the first failed check."""
    moment = at or datetime.now(UTC)
    if evidence.get("format") != EVIDENCE_FORMAT or evidence.get("version") != 1:
        raise AttestationError("format", "not edge-agent TPM attestation evidence version 1")
    kid = key_id(station_key)
    if evidence.get("kid") != kid.hex():
        raise AttestationError("wrong_key", f"evidence is for kid {evidence.get('kid')}")
    key = _public(evidence, "key_public")
    if not isinstance(station_key, ec.EllipticCurvePublicKey) or key.ecc_point is None:
        raise AttestationError("wrong_key", "only a P-256 station key can be TPM-attested")
    numbers = station_key.public_numbers()
    if key.ecc_point != (numbers.x, numbers.y):
        raise AttestationError("wrong_key", "the certified public area is another key")
    if key.attributes & REQUIRED_KEY_ATTRIBUTES != REQUIRED_KEY_ATTRIBUTES:
        raise AttestationError("key_attributes", f"key has only {key.attribute_names()}")
    ek_cert, ek = _ek(evidence, tpm_cas, moment)
    ak = _public(evidence, "ak_public")
    if ak.attributes != AK_ATTRIBUTES or ak.ecc_point is None:
        raise AttestationError(
            "ak_attributes", f"AK is not a restricted signing key: {ak.attribute_names()}"
        )
    attest_raw = _hex(evidence, "certify_info")
    try:
        r, s = parse_ecdsa_signature(_hex(evidence, "signature"))
        ak.ec_public_key().verify(encode_dss_signature(r, s), attest_raw, ec.ECDSA(hashes.SHA256()))
        info = parse_certify(attest_raw)
    except InvalidSignature:
        raise AttestationError("signature", "the certify is not signed by the AK") from None
    except TpmFormatError as exc:
        raise AttestationError("certify", str(exc)) from None
    if info.qualified_signer != qualified_name(hierarchy_qn(RH_ENDORSEMENT), ak.name):
        raise AttestationError(
            "ak_hierarchy", "the AK is not a primary of the endorsement hierarchy"
        )
    if info.name != key.name:
        raise AttestationError("name_mismatch", "the TPM certified another object than this key")
    parent = _public(evidence, "parent_public")
    if info.qualified_name != qualified_name(
        qualified_name(hierarchy_qn(RH_OWNER), parent.name), key.name
    ):
        raise AttestationError(
            "qualified_name", "the key is not under the given owner-hierarchy primary"
        )
    carried = _hex(evidence, "nonce")
    if nonce is not None and not hmac.compare_digest(carried, nonce):
        raise AttestationError("nonce", "evidence carries another nonce than the one asked for")
    if not hmac.compare_digest(info.extra_data, qualifying_data(kid, carried)):
        raise AttestationError("qualifying_data", "the certify was made for another kid or nonce")
    return AttestationResult(
        kid=kid.hex(),
        ek_subject=ek_cert.subject.rfc4514_string(),
        ek_issuer=ek_cert.issuer.rfc4514_string(),
        ek_public_sha256=hashlib.sha256(ek.raw).hexdigest(),
        ak_name=ak.name.hex(),
        key_name=key.name.hex(),
        key_attributes=tuple(key.attribute_names()),
        nonce=carried.hex(),
        verified=moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def _ek(
    evidence: Mapping[str, Any], cas: list[x509.Certificate], at: datetime
) -> tuple[x509.Certificate, TpmPublic]:
    try:
        cert = x509.load_der_x509_certificate(_hex(evidence, "ek_certificate"))
    except ValueError as exc:
        raise AttestationError("ek_chain", f"EK certificate unreadable: {exc}") from None
    _chain(cert, cas, at)
    ek = _public(evidence, "ek_public")
    cert_key = cert.public_key()
    if (
        ek.rsa_modulus is None
        or not isinstance(cert_key, rsa.RSAPublicKey)
        or cert_key.public_numbers().n != ek.rsa_modulus
    ):
        raise AttestationError("ek_mismatch", "the EK public area is not the certified EK")
    modulus = ek.rsa_modulus.to_bytes(256, "big") if ek.rsa_modulus.bit_length() <= 2048 else b""
    if ek.raw != ek_template()[:-258] + b2(modulus):  # template L-1 with this modulus
        raise AttestationError("ek_mismatch", "the EK public area is not the TCG EK template")
    return cert, ek


def make_challenge(evidence: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
    """A credential activation challenge for the evidence's AK and EK: (challenge, credential).

    Call after verify_evidence. The station answers with the credential (``activate``)."""
    ek = _public(evidence, "ek_public")
    ak = _public(evidence, "ak_public")
    credential = os.urandom(32)
    blob, secret = make_credential(ek, ak.name, credential, os.urandom(32))
    challenge = {
        "format": "edge-agent/tpm-credential-challenge",
        "kid": str(evidence.get("kid")),
        "ak_name": ak.name.hex(),
        "credential_blob": blob.hex(),
        "encrypted_secret": secret.hex(),
    }
    return challenge, credential


def check_activation(expected_sha256: str, answer: bytes) -> None:
    """AttestationError unless ``answer`` is the credential whose SHA-256 was kept."""
    if not hmac.compare_digest(hashlib.sha256(answer).hexdigest(), expected_sha256):
        raise AttestationError(
            "activation", "the credential answer is wrong: the AK is not in the EK's TPM"
        )
