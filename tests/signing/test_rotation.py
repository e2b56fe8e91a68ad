"""Key rotation statements: round trip, topic binding, both signatures, strict body, fuzz."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.errors import SigningError, TrustStoreError, VerificationError
from edge_agent.signing.cose import sign1
from edge_agent.signing.keys import public_key_pem
from edge_agent.signing.rotation import (
    KeyRotation,
    decode_rotation,
    encode_rotation,
    peek_rotation_id,
    sign_rotation,
    spki_der,
    verify_rotation,
)
from edge_agent.signing.signer import SoftwareSigner
from edge_agent.signing.trust import StaticKeys, TrustStore

WHERE = {"site": "plant-a", "station": "st01"}
AAD = b"plant-a/st01/key"
ROTATION_ID = "01a2457a-4306-74e6-9f72-fb1804271d8a"


def ed() -> SoftwareSigner:
    return SoftwareSigner(Ed25519PrivateKey.generate())


def p256() -> SoftwareSigner:
    return SoftwareSigner(ec.generate_private_key(ec.SECP256R1()))


def rotation(old: SoftwareSigner, new: SoftwareSigner, **changes: Any) -> KeyRotation:
    base = KeyRotation(
        rotation_id=ROTATION_ID,
        site="plant-a",
        station="st01",
        old_kid=old.kid,
        new_key=new.public_key,
        overlap_s=86400,
        issued_ms=1764921600123,
    )
    return replace(base, **changes)


@pytest.mark.parametrize(("make_old", "make_new"), [(ed, ed), (ed, p256), (p256, ed), (p256, p256)])
def test_round_trip(make_old: Any, make_new: Any) -> None:
    old, new = make_old(), make_new()
    body = rotation(old, new, not_before_ms=1, not_after_ms=2**40)
    message = sign_rotation(body, old, new)
    verified = verify_rotation(message, StaticKeys.of(old.public_key), **WHERE)
    assert verified.rotation == body
    assert verified.rotation.new_kid == new.kid
    assert peek_rotation_id(message) == ROTATION_ID


def test_deterministic_body() -> None:
    old, new = ed(), ed()
    body = encode_rotation(rotation(old, new))
    assert body == cbor2.dumps(cbor2.loads(body), canonical=True)
    plain = cbor2.loads(body)
    assert plain["type"] == "key_rotation" and plain["new_key"] == spki_der(new.public_key)
    assert plain["old_kid"] == old.kid and plain["new_kid"] == new.kid
    assert "not_before" not in plain and "not_after" not in plain


def test_bound_to_its_topic() -> None:
    old, new = ed(), ed()
    message = sign_rotation(rotation(old, new), old, new)
    with pytest.raises(VerificationError) as err:
        verify_rotation(message, StaticKeys.of(old.public_key), site="plant-a", station="st02")
    assert err.value.reason == "bad_signature"


def test_forged_by_another_key_is_unknown() -> None:
    old, new, thief = ed(), ed(), ed()
    # the thief names the station's old kid but signs with its own key
    body = rotation(old, new)
    inner = sign1(encode_rotation(body), new, external_aad=AAD)
    forged = sign1(inner, thief, external_aad=AAD)
    with pytest.raises(TrustStoreError) as err:
        verify_rotation(forged, StaticKeys.of(old.public_key), **WHERE)
    assert err.value.reason == "unknown_kid"
    # ... and with its key trusted (for some other station) the body names another kid
    with pytest.raises(VerificationError) as err2:
        verify_rotation(forged, StaticKeys.of(old.public_key, thief.public_key), **WHERE)
    assert err2.value.reason == "kid_mismatch"


def test_new_key_must_sign_the_inner_statement() -> None:
    old, new, other = ed(), ed(), ed()
    body = rotation(old, new)  # claims new's public key, inner signed by another key
    inner = sign1(encode_rotation(body), other, external_aad=AAD)
    message = sign1(inner, old, external_aad=AAD)
    with pytest.raises(VerificationError) as err:
        verify_rotation(message, StaticKeys.of(old.public_key), **WHERE)
    assert err.value.reason == "kid_mismatch"
    # the right kid in the header but a signature by another key
    inner = bytearray(sign1(encode_rotation(body), new, external_aad=AAD))
    inner[-1] ^= 1
    message = sign1(bytes(inner), old, external_aad=AAD)
    with pytest.raises(VerificationError) as err:
        verify_rotation(message, StaticKeys.of(old.public_key), **WHERE)
    assert err.value.reason == "bad_signature"
    assert "new key" in err.value.detail


def test_trust_store_decisions_apply_to_the_old_key(tmp_path: Any) -> None:
    old, new = ed(), ed()
    message = sign_rotation(rotation(old, new), old, new)
    store = TrustStore.load(tmp_path / "t.json", create=True)
    store.add(public_key_pem(old.public_key), station="st01", site="plant-a")
    store.revoke(old.kid.hex())
    with pytest.raises(TrustStoreError) as err:
        verify_rotation(message, store, **WHERE)
    assert err.value.reason == "revoked"
    store.add(
        public_key_pem(old.public_key),
        station="st01",
        site="plant-a",
        not_after=datetime.now(UTC) - timedelta(days=1),
        unrevoke=True,
    )
    with pytest.raises(TrustStoreError) as err:
        verify_rotation(message, store, **WHERE)
    assert err.value.reason == "expired"


def test_signing_refuses_mismatched_signers() -> None:
    old, new = ed(), ed()
    with pytest.raises(SigningError):
        sign_rotation(rotation(old, new), new, old)
    with pytest.raises(SigningError):
        sign_rotation(rotation(old, old), old, old)
    with pytest.raises(VerificationError):  # a station id that cannot be a topic level
        sign_rotation(rotation(old, new, station="a/b"), old, new)


def _plain(old: SoftwareSigner, new: SoftwareSigner) -> dict[str, Any]:
    return dict(cbor2.loads(encode_rotation(rotation(old, new))))


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"v": 2}, "v1"),
        ({"v": True}, "v1"),
        ({"type": "receipt"}, "key_rotation"),
        ({"extra": 1}, "unknown field"),
        ({"new_kid": b"\0" * 16}, "key id of new_key"),
        ({"old_kid": b"\0" * 15}, "old_kid"),
        ({"new_key": b"\x30\x00"}, "SPKI"),
        ({"overlap_s": -1}, "overlap_s"),
        ({"overlap_s": 10**9}, "overlap_s above"),
        ({"overlap_s": 1.5}, "overlap_s"),
        ({"issued": True}, "issued"),
        ({"site": "a/b"}, "site"),
        ({"rotation_id": ""}, "rotation_id"),
        ({"not_before": 5, "not_after": 4}, "not_after before"),
    ],
)
def test_strict_body(change: dict[str, Any], detail: str) -> None:
    plain = _plain(ed(), ed()) | change
    with pytest.raises(VerificationError) as err:
        decode_rotation(cbor2.dumps(plain, canonical=True))
    assert err.value.reason == "bad_payload"
    assert detail in err.value.detail


def test_old_kid_equal_to_new_is_refused() -> None:
    key = ed()
    plain = _plain(key, key)
    with pytest.raises(VerificationError, match="itself"):
        decode_rotation(cbor2.dumps(plain, canonical=True))


def test_trailing_bytes_and_duplicate_keys_are_refused() -> None:
    body = encode_rotation(rotation(ed(), ed()))
    with pytest.raises(VerificationError):
        decode_rotation(body + b"\x00")
    # a map with "site" twice: the second value would be what another decoder reads
    dup = b"\xa2\x64site\x61a\x64site\x61b"
    with pytest.raises(VerificationError):
        decode_rotation(dup)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_decoder_never_crashes(data: bytes) -> None:
    try:
        decode_rotation(data)
    except VerificationError:
        pass
    assert peek_rotation_id(data) is None or isinstance(peek_rotation_id(data), str)


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.binary(max_size=40) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(_plain(ed(), ed()))) | st.text(max_size=6), _VALUES))
def test_fuzz_mutated_fields(changes: dict[str, Any]) -> None:
    plain = _plain(OLD, NEW) | changes
    try:
        got = decode_rotation(cbor2.dumps(plain, canonical=True))
    except VerificationError as exc:
        assert exc.reason == "bad_payload"
        return
    assert got.rotation_id == plain["rotation_id"]


OLD, NEW = ed(), ed()
_MESSAGE = sign_rotation(rotation(OLD, NEW), OLD, NEW)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_MESSAGE) - 1), st.integers(1, 255))
def test_fuzz_flipped_statement_never_verifies(index: int, flip: int) -> None:
    data = bytearray(_MESSAGE)
    data[index] ^= flip
    with pytest.raises(VerificationError):
        verify_rotation(bytes(data), StaticKeys.of(OLD.public_key), **WHERE)
