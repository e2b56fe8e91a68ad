"""sign1 / verify_sign1: round trips, header layout and every rejection reason of the policy."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from edge_agent.errors import SigningError, VerificationError
from edge_agent.signing.cose import (
    EVENT_POLICY,
    GENERIC_POLICY,
    sig_structure,
    sign1,
    verify_sign1,
)
from edge_agent.signing.signer import Signer, SoftwareSigner, key_id
from edge_agent.signing.trust import StaticKeys, TrustStore
from tests.support.signing import make_sign1

PAYLOAD = b"\xa2av\x01dseq\x18\x2a"


def _signer(kind: str, legacy: bool = False) -> SoftwareSigner:
    key = (
        Ed25519PrivateKey.generate()
        if kind == "ed25519"
        else ec.generate_private_key(ec.SECP256R1())
    )
    return SoftwareSigner(key, legacy_alg_ids=legacy)


def _reason(message: bytes, keys: object, **kw: object) -> str:
    with pytest.raises(VerificationError) as info:
        verify_sign1(message, keys, **kw)  # type: ignore[arg-type]
    return info.value.reason


@pytest.mark.parametrize(
    ("kind", "legacy", "alg"),
    [("ed25519", False, -19), ("p256", False, -9), ("ed25519", True, -8), ("p256", True, -7)],
)
def test_round_trip_and_layout(kind: str, legacy: bool, alg: int) -> None:
    signer = _signer(kind, legacy)
    message = sign1(PAYLOAD, signer)
    item = cbor2.loads(message)
    assert message[0] == 0xD2 and item.tag == 18
    protected, unprotected, payload, signature = item.value
    assert cbor2.loads(protected) == {1: alg, 4: signer.kid}
    assert protected == cbor2.dumps({1: alg, 4: signer.kid}, canonical=True)
    assert unprotected == {} and payload == PAYLOAD and len(signature) == 64
    for policy in (EVENT_POLICY, GENERIC_POLICY):
        verified = verify_sign1(message, StaticKeys.of(signer.public_key), policy=policy)
        assert (verified.payload, verified.kid, verified.alg) == (PAYLOAD, signer.kid, alg)
        assert verified.protected == {1: alg, 4: signer.kid}


def test_key_ids_follow_the_documented_rule() -> None:
    ed = Ed25519PublicKey.from_public_bytes(
        bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    )
    assert (
        key_id(ed)
        == hashlib.sha256(
            bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        ).digest()[:16]
    )
    p = ec.generate_private_key(ec.SECP256R1()).public_key()
    nums = p.public_numbers()
    compressed = bytes([2 + (nums.y & 1)]) + nums.x.to_bytes(32, "big")
    assert key_id(p) == hashlib.sha256(compressed).digest()[:16]
    with pytest.raises(SigningError):
        key_id(ec.generate_private_key(ec.SECP384R1()).public_key())


def test_external_aad_binds_the_topic() -> None:
    signer = _signer("p256")
    keys = StaticKeys.of(signer.public_key)
    message = sign1(PAYLOAD, signer, external_aad=b"battrace/v1/site/st/event")
    assert verify_sign1(message, keys, external_aad=b"battrace/v1/site/st/event").payload == PAYLOAD
    assert _reason(message, keys, external_aad=b"battrace/v1/site/other/event") == "bad_signature"
    assert _reason(message, keys) == "bad_signature"


def test_ecdsa_signature_is_raw_r_s() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signer = SoftwareSigner(key)
    message = sign1(PAYLOAD, signer)
    protected, _, _, signature = cbor2.loads(message).value
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    key.public_key().verify(
        encode_dss_signature(r, s),
        sig_structure(protected, b"", PAYLOAD),
        ec.ECDSA(hashes.SHA256()),
    )


class DerLeakingSigner:
    """A hardware-style signer that (wrongly) returns DER: sign1 must catch it."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.alg = -9
        self.public_key = self._key.public_key()
        self.kid = key_id(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))


def test_signer_protocol_accepts_other_implementations() -> None:
    assert isinstance(_signer("ed25519"), Signer)
    odd = DerLeakingSigner()
    assert isinstance(odd, Signer)
    with pytest.raises(SigningError, match="expected 64"):
        sign1(PAYLOAD, odd)  # type: ignore[arg-type]


class RawSecureElement(DerLeakingSigner):
    """The same key with correct raw output: verifies like a software key."""

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(super().sign(data))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_custom_signer_round_trip() -> None:
    se = RawSecureElement()
    message = sign1(PAYLOAD, se)  # type: ignore[arg-type]
    assert verify_sign1(message, StaticKeys.of(se.public_key)).alg == -9


def test_sign1_rejects_non_bytes() -> None:
    with pytest.raises(SigningError):
        sign1("text", _signer("ed25519"))  # type: ignore[arg-type]


# --- rejection reasons ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ed() -> SoftwareSigner:
    return _signer("ed25519")


def _hand(
    signer: SoftwareSigner,
    protected: dict,
    unprotected: dict | None = None,
    *,
    tag: int | None = 18,
    payload: bytes = PAYLOAD,
) -> bytes:
    """A correctly signed message with arbitrary headers."""
    prot = cbor2.dumps(protected) if protected else b""
    signature = signer.sign(sig_structure(prot, b"", payload))
    return make_sign1(prot, unprotected or {}, payload, signature, tag=tag)


def test_reasons_for_garbage(ed: SoftwareSigner) -> None:
    keys = StaticKeys.of(ed.public_key)
    good = sign1(PAYLOAD, ed)
    assert _reason(b"", keys) == "not_cbor"
    assert _reason(b"\xff", keys) == "not_cbor"
    assert _reason(good + b"\x00", keys) == "trailing_bytes"
    assert _reason(cbor2.dumps(cbor2.CBORTag(98, cbor2.loads(good).value)), keys) == "wrong_tag"
    assert _reason(cbor2.dumps(cbor2.loads(good).value), keys) == "wrong_tag"
    assert _reason(cbor2.dumps(cbor2.CBORTag(18, [b"", {}, PAYLOAD])), keys) == "malformed"
    assert _reason(make_sign1({1: -19}, {}, None, b"x" * 64), keys) == "malformed"  # detached
    assert (
        _reason(cbor2.dumps(cbor2.CBORTag(18, [{1: -19}, {}, PAYLOAD, b""])), keys) == "malformed"
    )
    assert (
        _reason(cbor2.dumps(cbor2.CBORTag(18, [b"\x82\x01", {}, PAYLOAD, b""])), keys)
        == "malformed"
    )
    assert _reason(b"\x00" * (EVENT_POLICY.max_size or 0) + b"\x00", keys) == "too_large"
    assert _reason("text", keys) == "malformed"  # type: ignore[arg-type]


def test_reasons_for_headers(ed: SoftwareSigner) -> None:
    keys = StaticKeys.of(ed.public_key)
    kid = ed.kid
    assert _reason(_hand(ed, {4: kid}, {1: -19}), keys) == "alg_missing"
    assert _reason(_hand(ed, {1: -19}, {4: kid}), keys) == "kid_missing"
    assert _reason(_hand(ed, {1: -19}), keys) == "kid_missing"
    assert _reason(_hand(ed, {1: -19, 4: "text-kid"}), keys) == "malformed"
    assert _reason(_hand(ed, {1: -35, 4: kid}), keys) == "alg_not_allowed"
    assert _reason(_hand(ed, {1: "EdDSA", 4: kid}), keys) == "alg_not_allowed"
    assert _reason(_hand(ed, {1: True, 4: kid}), keys) == "alg_not_allowed"
    assert _reason(_hand(ed, {1: -19, 3: 0, 4: kid}), keys) == "header_not_allowed"
    assert (
        _reason(_hand(ed, {1: -19, 2: [3], 3: 0, 4: kid}), keys, policy=GENERIC_POLICY)
        == "header_not_allowed"
    )
    assert _reason(_hand(ed, {1: -19, 4: kid}, {33: b"x"}), keys) == "header_not_allowed"
    assert (
        _reason(_hand(ed, {1: -19, 4: kid}, {1: -19}), keys, policy=GENERIC_POLICY) == "malformed"
    )
    assert _reason(_hand(ed, {1: -19, 4: kid, 1.5: 0}), keys) == "malformed"
    # duplicate map keys inside the protected header
    dup = b"\xa3\x01\x32\x04\x50" + kid + b"\x01\x27"
    signature = ed.sign(sig_structure(dup, b"", PAYLOAD))
    assert _reason(make_sign1(dup, {}, PAYLOAD, signature), keys) == "malformed"
    # the same headers, correctly placed, verify
    assert verify_sign1(_hand(ed, {1: -19, 4: kid}), keys).kid == kid


def test_untagged_and_unprotected_alg_pass_only_the_generic_policy(ed: SoftwareSigner) -> None:
    keys = StaticKeys.of(ed.public_key)
    message = _hand(ed, {}, {1: -19, 4: ed.kid}, tag=None)
    assert verify_sign1(message, keys, policy=GENERIC_POLICY).alg == -19
    assert _reason(message, keys) == "wrong_tag"


def test_key_must_match_alg(ed: SoftwareSigner) -> None:
    p256 = _signer("p256")
    # Ed25519 message, kid mapped to a P-256 key
    assert _reason(sign1(PAYLOAD, ed), StaticKeys({ed.kid: p256.public_key})) == "key_alg_mismatch"
    # ESP256 header over an Ed25519 key
    assert (
        _reason(_hand(ed, {1: -9, 4: ed.kid}), StaticKeys.of(ed.public_key)) == "key_alg_mismatch"
    )
    # ES256 is polymorphic, but events only use P-256 keys
    p384 = ec.generate_private_key(ec.SECP384R1())
    prot = cbor2.dumps({1: -7, 4: b"k384"})
    der = p384.sign(sig_structure(prot, b"", PAYLOAD), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    message = make_sign1(prot, {}, PAYLOAD, r.to_bytes(48, "big") + s.to_bytes(48, "big"))
    keys = StaticKeys({b"k384": p384.public_key()})
    assert _reason(message, keys) == "key_alg_mismatch"
    assert verify_sign1(message, keys, policy=GENERIC_POLICY).alg == -7


def test_bad_signatures(ed: SoftwareSigner) -> None:
    keys = StaticKeys.of(ed.public_key)
    protected, _, payload, signature = cbor2.loads(sign1(PAYLOAD, ed)).value
    for bad in (signature[:-1], signature + b"\x00", b"\x00" * 64, bytes(64 * [0xFF]), b""):
        assert _reason(make_sign1(protected, {}, payload, bad), keys) == "bad_signature"
    p = _signer("p256")
    protected, _, payload, signature = cbor2.loads(sign1(PAYLOAD, p)).value
    for bad in (
        signature[:32] + bytes(32),
        bytes(32) + signature[32:],
        signature[:63],
        signature[::-1],
    ):
        assert (
            _reason(make_sign1(protected, {}, payload, bad), StaticKeys.of(p.public_key))
            == "bad_signature"
        )


def test_non_preferred_outer_encoding_is_refused_for_events(ed: SoftwareSigner) -> None:
    keys = StaticKeys.of(ed.public_key)
    protected, _, payload, signature = cbor2.loads(sign1(PAYLOAD, ed)).value
    # payload length written with a one-byte length argument although it is < 24
    padded = (
        b"\xd2\x84"
        + cbor2.dumps(protected)
        + b"\xa0"
        + b"\x58"
        + bytes([len(payload)])
        + payload
        + cbor2.dumps(signature)
    )
    assert _reason(padded, keys) == "non_canonical"
    assert verify_sign1(padded, keys, policy=GENERIC_POLICY).payload == PAYLOAD


def test_trust_store_reasons(tmp_path: Path, ed: SoftwareSigner) -> None:
    store = TrustStore(tmp_path / "trust.json")
    pem = ed.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    message = sign1(PAYLOAD, ed)
    assert _reason(message, store) == "unknown_kid"
    store.add(
        pem, station="bench-03", site="plant-a", not_before=now, not_after=now + timedelta(days=30)
    )
    assert verify_sign1(message, store, at=now + timedelta(days=1)).kid == ed.kid
    assert _reason(message, store, at=now - timedelta(seconds=1)) == "not_yet_valid"
    assert _reason(message, store, at=now + timedelta(days=31)) == "expired"
    store.revoke(ed.kid.hex())
    assert _reason(message, store, at=now + timedelta(days=1)) == "revoked"


@pytest.mark.parametrize("size", [0, 1, 23, 24, 255, 256, 65535, 65536])
def test_hand_encodings_equal_cbor2(size: int) -> None:
    from edge_agent.signing.cose import encode_sign1

    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    prot = cbor2.dumps({1: -19, 4: b"k" * 16})
    assert sig_structure(prot, payload[: size // 3], payload) == cbor2.dumps(
        ["Signature1", prot, payload[: size // 3], payload]
    )
    assert encode_sign1(prot, payload, b"s" * 64) == cbor2.dumps(
        cbor2.CBORTag(18, [prot, {}, payload, b"s" * 64])
    )
