"""TPM attestation verification without a TPM: a recorded vector (evidence from a swtpm
manufactured by swtpm_setup, its swtpm_localca CA) verifies; hypothesis: any change to the
evidence and any bytes to the TPM structure parsers give a typed error, never a crash."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.errors import AttestationError
from edge_agent.signing.tpm_attestation import load_ca_file, verify_evidence
from edge_agent.signing.tpm_structures import (
    TpmFormatError,
    parse_certify,
    parse_ecdsa_signature,
    parse_public,
)

DATA = Path(__file__).parent / "data"
EVIDENCE: dict[str, Any] = json.loads((DATA / "tpm_evidence.json").read_text())
CAS = load_ca_file((DATA / "tpm_ca.pem").read_bytes())
KEY = parse_public(bytes.fromhex(EVIDENCE["key_public"])).ec_public_key()
FIELDS = sorted(k for k in EVIDENCE if k not in {"format", "version"})
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_recorded_vector_verifies() -> None:
    result = verify_evidence(EVIDENCE, station_key=KEY, tpm_cas=CAS, nonce=b"vector-nonce")
    assert result.kid == EVIDENCE["kid"] and result.ek_issuer == "CN=swtpm-localca"
    assert result.ak_bound_to_ek is False  # no activation in a recorded vector


def test_only_the_root_is_not_enough_without_the_issuer() -> None:
    root_only = [c for c in CAS if c.subject == c.issuer]
    with pytest.raises(AttestationError) as caught:
        verify_evidence(EVIDENCE, station_key=KEY, tpm_cas=root_only)
    assert caught.value.reason == "ek_chain"


@FUZZ
@given(field=st.sampled_from(FIELDS), at=st.integers(0, 4000), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused(field: str, at: int, bit: int) -> None:
    evidence = copy.deepcopy(EVIDENCE)
    raw = bytearray(bytes.fromhex(evidence[field]))
    if not raw:
        raw = bytearray(b"\0")
    else:
        raw[at % len(raw)] ^= 1 << bit
    evidence[field] = raw.hex()
    with pytest.raises(AttestationError):
        verify_evidence(evidence, station_key=KEY, tpm_cas=CAS)


@FUZZ
@given(
    field=st.sampled_from(FIELDS), value=st.one_of(st.binary(max_size=300), st.none(), st.text())
)
def test_any_replaced_field_is_refused(field: str, value: bytes | str | None) -> None:
    evidence = copy.deepcopy(EVIDENCE)
    evidence[field] = value.hex() if isinstance(value, bytes) else value
    if evidence[field] == EVIDENCE[field]:
        return
    with pytest.raises(AttestationError):
        verify_evidence(evidence, station_key=KEY, tpm_cas=CAS)


@FUZZ
@given(data=st.binary(max_size=400))
def test_parsers_take_any_bytes(data: bytes) -> None:
    for parse in (parse_public, parse_certify, parse_ecdsa_signature):
        try:
            parse(data)
        except TpmFormatError:
            pass
