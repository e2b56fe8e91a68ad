"""Receipt codec: sign/verify round trip, topic binding, foreign keys, strict body, fuzz."""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.errors import VerificationError
from edge_agent.gateway.receipts import peek_event
from edge_agent.signing.keys import init_keys, load_signer
from edge_agent.signing.receipts import (
    Receipt,
    ReceiptItem,
    decode_receipt,
    encode_receipt,
    sign_receipt,
    verify_receipt,
)
from edge_agent.signing.trust import StaticKeys

TOPIC = "battrace/v1/plant-a/st01/receipt"
RECEIPT = Receipt(
    "plant-a",
    "st01",
    1764921600123,
    (
        ReceiptItem("01a2457a-4306-74e6-9f72-fb1804271d8a", "accepted", last=(3, 17)),
        ReceiptItem(
            "01a2457a-4306-74e6-9f72-fb1804271d8b",
            "rejected",
            "replay",
            "stale_epoch epoch=1 seq=4",
            (3, 17),
        ),
    ),
)


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> object:
    key_dir = tmp_path_factory.mktemp("gw")
    init_keys(key_dir)
    return load_signer(key_dir)


def test_round_trip(signer: object) -> None:
    message = sign_receipt(RECEIPT, signer, topic=TOPIC)  # type: ignore[arg-type]
    keys = StaticKeys.of(signer.public_key)  # type: ignore[attr-defined]
    assert verify_receipt(message, keys, topic=TOPIC) == RECEIPT


def test_bound_to_its_topic(signer: object) -> None:
    message = sign_receipt(RECEIPT, signer, topic=TOPIC)  # type: ignore[arg-type]
    keys = StaticKeys.of(signer.public_key)  # type: ignore[attr-defined]
    with pytest.raises(VerificationError) as err:
        verify_receipt(message, keys, topic="battrace/v1/plant-a/st02/receipt")
    assert err.value.reason == "bad_signature"


def test_foreign_key_is_unknown(signer: object, tmp_path: Path) -> None:
    init_keys(tmp_path / "other")
    other = load_signer(tmp_path / "other")
    message = sign_receipt(RECEIPT, other, topic=TOPIC)
    with pytest.raises(VerificationError) as err:
        verify_receipt(message, StaticKeys.of(signer.public_key), topic=TOPIC)  # type: ignore[attr-defined]
    assert err.value.reason == "unknown_kid"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.update(v=2),
        lambda b: b.update(type="event"),
        lambda b: b.update(items=[]),
        lambda b: b["items"][0].update(status="maybe"),
        lambda b: b["items"][1].pop("reason"),
        lambda b: b["items"][0].update(last=[1]),
        lambda b: b["items"][0].update(last=[-1, 2]),
        lambda b: b.update(station="a/b"),
    ],
)
def test_malformed_bodies_are_refused(mutate: object) -> None:
    body = cbor2.loads(encode_receipt(RECEIPT))
    mutate(body)  # type: ignore[operator]
    with pytest.raises(VerificationError) as err:
        decode_receipt(cbor2.dumps(body))
    assert err.value.reason == "bad_payload"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_fuzz_decode_never_crashes(data: bytes) -> None:
    try:
        decode_receipt(data)
    except VerificationError:
        pass
    assert peek_event(data) is None or isinstance(peek_event(data), tuple)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.binary(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
        max_leaves=12,
    )
)
def test_fuzz_structured_bodies(value: object) -> None:
    try:
        decode_receipt(cbor2.dumps({"v": 1, "type": "receipt", "items": value}))
    except VerificationError:
        pass
