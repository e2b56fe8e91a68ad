"""sign_event / verify_event: the station and gateway entry points."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cbor2
import pytest

from edge_agent.errors import SigningError, VerificationError
from edge_agent.event_codec import encode_event, encode_plain
from edge_agent.signing.cose import sign1
from edge_agent.signing.events import sign_event, verify_event
from edge_agent.signing.keys import init_keys, load_signer, public_key_pem
from edge_agent.signing.signer import SoftwareSigner
from edge_agent.signing.trust import StaticKeys, TrustStore
from tests.support.signing import example_event, example_plain


@pytest.fixture(params=["ed25519", "p256"])
def signer(request: pytest.FixtureRequest, tmp_path: Path) -> SoftwareSigner:
    init_keys(tmp_path / "keys", request.param)
    return load_signer(tmp_path / "keys")


def _reason(message: bytes, keys: object) -> str:
    with pytest.raises(VerificationError) as info:
        verify_event(message, keys)  # type: ignore[arg-type]
    return info.value.reason


@pytest.mark.parametrize("name", ["healthy-lfp", "damaged-mismatch", "bms-unreadable"])
def test_round_trip(signer: SoftwareSigner, name: str) -> None:
    event = example_event(signer.kid.hex(), name)
    message = sign_event(event, signer)
    result = verify_event(message, StaticKeys.of(signer.public_key))
    assert result.event == event
    assert result.kid == signer.kid and result.alg == signer.alg
    assert result.payload == encode_event(event)
    assert cbor2.loads(result.payload) == example_plain(name) | {"kid": signer.kid.hex()}


def test_sign_refuses_an_event_for_another_key(signer: SoftwareSigner) -> None:
    with pytest.raises(SigningError, match="not the signer's key id"):
        sign_event(example_event("00" * 16), signer)


def test_body_kid_must_match_the_envelope(signer: SoftwareSigner) -> None:
    forged = sign1(encode_event(example_event("ab" * 16)), signer)
    assert _reason(forged, StaticKeys.of(signer.public_key)) == "kid_mismatch"


@pytest.mark.parametrize(
    "payload",
    [b"not cbor \xff", encode_plain({"v": 2}), encode_plain([1, 2]), b""],
)
def test_bad_payload(signer: SoftwareSigner, payload: bytes) -> None:
    assert _reason(sign1(payload, signer), StaticKeys.of(signer.public_key)) == "bad_payload"


def test_payload_with_invalid_field_is_bad(signer: SoftwareSigner) -> None:
    plain = example_plain() | {"kid": signer.kid.hex(), "seq": -1}
    assert (
        _reason(sign1(encode_plain(plain), signer), StaticKeys.of(signer.public_key))
        == "bad_payload"
    )


def test_trusted_key_speaks_only_for_its_station(signer: SoftwareSigner, tmp_path: Path) -> None:
    event = example_event(signer.kid.hex())  # bench-03 at recy-suzhou-01
    message = sign_event(event, signer)
    store = TrustStore(tmp_path / "t.json")
    store.add(public_key_pem(signer.public_key), station="bench-03", site="recy-suzhou-01")
    assert verify_event(message, store).event.station == "bench-03"
    store.add(public_key_pem(signer.public_key), station="bench-09", site="recy-suzhou-01")
    assert _reason(message, store) == "station_mismatch"
    store.add(public_key_pem(signer.public_key), station="bench-03", site="other-site")
    assert _reason(message, store) == "station_mismatch"
    store.add(public_key_pem(signer.public_key), station="", site="")  # unbound key
    assert verify_event(message, store).kid == signer.kid


def test_topic_binding(signer: SoftwareSigner) -> None:
    event = example_event(signer.kid.hex())
    topic = b"battrace/v1/recy-suzhou-01/bench-03/event"
    message = sign_event(event, signer, external_aad=topic)
    keys = StaticKeys.of(signer.public_key)
    assert verify_event(message, keys, external_aad=topic).event == event
    assert _reason(message, keys) == "bad_signature"


def test_rejection_is_logged(signer: SoftwareSigner, caplog: pytest.LogCaptureFixture) -> None:
    message = sign_event(replace(example_event(signer.kid.hex()), seq=1), signer)
    with caplog.at_level("WARNING", logger="edge_agent.signing.events"):
        _reason(message[:-1], StaticKeys.of(signer.public_key))
    assert "event rejected: not_cbor" in caplog.text


def test_trailing_bytes_after_the_body_are_refused(signer: SoftwareSigner) -> None:
    payload = encode_event(example_event(signer.kid.hex())) + b"\x00"
    with pytest.raises(VerificationError) as info:
        verify_event(sign1(payload, signer), StaticKeys.of(signer.public_key))
    assert info.value.reason == "bad_payload" and "after the event" in info.value.detail


def test_duplicate_keys_in_the_body_are_refused(signer: SoftwareSigner) -> None:
    body = encode_event(example_event(signer.kid.hex()))
    entries = body[0] - 0xA0  # a map of fewer than 23 entries: append a second "seq", bump it
    assert 0 < entries < 23
    forged = bytes([0xA0 + entries + 1]) + body[1:] + cbor2.dumps("seq") + cbor2.dumps(7)
    with pytest.raises(VerificationError) as info:
        verify_event(sign1(forged, signer), StaticKeys.of(signer.public_key))
    assert info.value.reason == "bad_payload" and "not valid CBOR" in info.value.detail
