"""The cose-wg COSE_Sign1 examples: the generic verifier agrees, the event policy refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.errors import VerificationError
from edge_agent.signing.cose import EVENT_POLICY, GENERIC_POLICY, sig_structure, verify_sign1
from edge_agent.signing.trust import StaticKeys
from tests.support.signing import load_vector, vector_public_key

# name -> (reason under GENERIC_POLICY or None for pass, reason under EVENT_POLICY)
VECTORS = {
    "sign1-tests/sign-pass-01": (None, "alg_missing"),  # alg only unprotected, protected h'a0'
    "sign1-tests/sign-pass-02": (None, "kid_missing"),  # external aad
    "sign1-tests/sign-pass-03": (None, "wrong_tag"),  # untagged
    "sign1-tests/sign-fail-01": ("wrong_tag", "wrong_tag"),  # tag 998
    "sign1-tests/sign-fail-02": ("bad_signature", "kid_missing"),  # payload changed
    "sign1-tests/sign-fail-03": ("alg_not_allowed", "alg_not_allowed"),  # alg -999
    "sign1-tests/sign-fail-04": ("alg_not_allowed", "alg_not_allowed"),  # alg "unknown"
    "sign1-tests/sign-fail-06": ("bad_signature", "header_not_allowed"),  # ctyp added
    "sign1-tests/sign-fail-07": ("bad_signature", "kid_missing"),  # ctyp removed
    "ecdsa-examples/ecdsa-sig-01": (None, "header_not_allowed"),  # ES256 + ctyp
    "ecdsa-examples/ecdsa-sig-02": (None, "alg_not_allowed"),  # ES384 / P-384
    "ecdsa-examples/ecdsa-sig-03": (None, "alg_not_allowed"),  # ES512 / P-521
    "ecdsa-examples/ecdsa-sig-04": (None, "alg_not_allowed"),  # ES512 on a P-256 key
    "eddsa-examples/eddsa-sig-01": (None, "header_not_allowed"),  # Ed25519 + ctyp
    "eddsa-examples/eddsa-sig-02": (None, "kid_missing"),  # Ed448
}


def _case(shared_data: Path, name: str) -> tuple[dict, bytes, StaticKeys, bytes]:
    vector = load_vector(shared_data / "cose-wg-examples" / f"{name}.json")
    sign0 = vector["input"]["sign0"]
    jwk = sign0["key"]
    keys = StaticKeys({jwk["kid"].encode(): vector_public_key(jwk)})
    aad = bytes.fromhex(sign0.get("external", ""))
    return vector, bytes.fromhex(vector["output"]["cbor"]), keys, aad


def test_every_vector_in_the_folder_is_listed(shared_data: Path) -> None:
    root = shared_data / "cose-wg-examples"
    found = {str(p.relative_to(root))[: -len(".json")] for p in root.glob("*/*.json")}
    assert found == set(VECTORS)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_generic_policy(shared_data: Path, name: str) -> None:
    vector, message, keys, aad = _case(shared_data, name)
    expected, _ = VECTORS[name]
    assert bool(vector.get("fail")) == (expected is not None)
    if expected is None:
        verified = verify_sign1(message, keys, external_aad=aad, policy=GENERIC_POLICY)
        assert verified.payload == vector["input"]["plaintext"].encode()
        assert verified.kid == vector["input"]["sign0"]["key"]["kid"].encode()
    else:
        with pytest.raises(VerificationError) as info:
            verify_sign1(message, keys, external_aad=aad, policy=GENERIC_POLICY)
        assert info.value.reason == expected


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_event_policy_refuses_foreign_shapes(shared_data: Path, name: str) -> None:
    _, message, keys, aad = _case(shared_data, name)
    with pytest.raises(VerificationError) as info:
        verify_sign1(message, keys, external_aad=aad, policy=EVENT_POLICY)
    assert info.value.reason == VECTORS[name][1]


@pytest.mark.parametrize(
    "name", [n for n, (reason, _) in VECTORS.items() if reason is None and "pass-01" not in n]
)
def test_sig_structure_matches_published_to_be_signed(shared_data: Path, name: str) -> None:
    import cbor2

    vector, message, _, aad = _case(shared_data, name)
    item = cbor2.loads(message)
    protected, _, payload, _ = item.value if isinstance(item, cbor2.CBORTag) else item
    expected = bytes.fromhex(vector["intermediates"]["ToBeSign_hex"])
    assert sig_structure(protected, aad, payload) == expected


def test_external_aad_is_needed_for_sign_pass_02(shared_data: Path) -> None:
    _, message, keys, _ = _case(shared_data, "sign1-tests/sign-pass-02")
    with pytest.raises(VerificationError) as info:
        verify_sign1(message, keys, policy=GENERIC_POLICY)
    assert info.value.reason == "bad_signature"


def test_wrong_published_key_fails(shared_data: Path) -> None:
    _, message, _, _ = _case(shared_data, "ecdsa-examples/ecdsa-sig-01")
    other = load_vector(shared_data / "cose-wg-examples/ecdsa-examples/ecdsa-sig-02.json")
    p384 = vector_public_key(other["input"]["sign0"]["key"])
    with pytest.raises(VerificationError) as info:
        verify_sign1(message, StaticKeys({b"11": p384}), policy=GENERIC_POLICY)
    # ES256 is polymorphic over curves, so a P-384 key is accepted as a type but fails the math
    assert info.value.reason == "bad_signature"
