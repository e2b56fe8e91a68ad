"""Project-signed events checked without project code, and a flipped bit anywhere fails."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from edge_agent.errors import VerificationError
from edge_agent.signing.events import sign_event, verify_event
from edge_agent.signing.keys import init_keys, load_signer
from edge_agent.signing.trust import StaticKeys
from tests.support.signing import example_event, example_plain, hand_sig_structure


def independent_verify(message: bytes, public_key: object) -> bytes:
    """RFC 9052 verification using only cbor2 and cryptography; returns the payload."""
    outer = cbor2.loads(message)
    assert isinstance(outer, cbor2.CBORTag) and outer.tag == 18
    protected, unprotected, payload, signature = outer.value
    headers = cbor2.loads(protected)
    assert unprotected == {}
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
    assert to_sign == hand_sig_structure(protected, b"", payload)  # two independent encodings
    if headers[1] in (-19, -8):
        assert isinstance(public_key, Ed25519PublicKey)
        public_key.verify(signature, to_sign)
    else:
        assert headers[1] in (-9, -7) and isinstance(public_key, ec.EllipticCurvePublicKey)
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        public_key.verify(encode_dss_signature(r, s), to_sign, ec.ECDSA(hashes.SHA256()))
    return bytes(payload)


@pytest.mark.parametrize("alg", ["ed25519", "p256"])
@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("name", ["healthy-lfp", "damaged-mismatch", "bms-unreadable"])
def test_events_verify_independently(tmp_path: Path, alg: str, legacy: bool, name: str) -> None:
    kid = init_keys(tmp_path, alg)  # type: ignore[arg-type]
    signer = load_signer(tmp_path, legacy_alg_ids=legacy)
    message = sign_event(example_event(kid.hex(), name), signer)
    payload = independent_verify(message, signer.public_key)
    expected = example_plain(name) | {"kid": kid.hex()}
    assert cbor2.loads(payload) == expected
    assert cbor2.loads(cbor2.loads(message).value[0])[4] == kid


@pytest.mark.parametrize("alg", ["ed25519", "p256"])
def test_flipping_any_bit_fails(tmp_path: Path, alg: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="edge_agent.signing.events")  # 14k rejections
    kid = init_keys(tmp_path, alg)  # type: ignore[arg-type]
    signer = load_signer(tmp_path)
    keys = StaticKeys.of(signer.public_key)
    message = sign_event(example_event(kid.hex(), "bms-unreadable"), signer)
    assert verify_event(message, keys).event.kid == kid.hex()
    reasons: Counter[str] = Counter()
    for bit in range(len(message) * 8):
        flipped = bytearray(message)
        flipped[bit // 8] ^= 1 << (bit % 8)
        try:
            verify_event(bytes(flipped), keys)
        except VerificationError as exc:
            reasons[exc.reason] += 1
        else:
            pytest.fail(f"bit {bit} flipped and the message still verified")
    assert sum(reasons.values()) == len(message) * 8
    # the payload is most of the message, so most flips must be caught by the signature
    assert reasons["bad_signature"] > len(message) * 8 * 0.8
    assert reasons["unknown_kid"] == 16 * 8
