"""Hypothesis: any bytes give Verified or VerificationError, never another exception."""

from __future__ import annotations

from dataclasses import replace

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.errors import VerificationError
from edge_agent.signing.cose import (
    EVENT_POLICY,
    GENERIC_POLICY,
    _split,
    encode_sign1,
    sign1,
    verify_sign1,
)
from edge_agent.signing.events import verify_event
from edge_agent.signing.signer import SoftwareSigner
from edge_agent.signing.trust import StaticKeys

ED = SoftwareSigner(Ed25519PrivateKey.generate())
P256 = SoftwareSigner(ec.generate_private_key(ec.SECP256R1()))
KEYS = StaticKeys.of(ED.public_key, P256.public_key)
GOOD = [sign1(b"\xa1av\x01", ED), sign1(b"payload", P256), sign1(b"", ED)]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(message: bytes) -> str:
    for policy in (EVENT_POLICY, GENERIC_POLICY):
        try:
            verify_sign1(message, KEYS, policy=policy)
        except VerificationError as exc:
            assert exc.reason and exc.reason.isidentifier()
            last = exc.reason
        else:
            last = "ok"
    try:
        verify_event(message, KEYS)
    except VerificationError:
        pass
    return last


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes(data: bytes) -> None:
    _outcome(data)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_behind_the_tag(data: bytes) -> None:
    _outcome(b"\xd2" + data)
    _outcome(b"\xd2\x84" + data)


cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats()
    | st.binary(max_size=40)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.integers(-40, 40) | st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=12,
)


@FUZZ
@given(st.lists(cbor_values, min_size=0, max_size=5), cbor_values, st.booleans())
def test_structured_envelopes(items: list, header_map: object, tagged: bool) -> None:
    """Plausible shapes: random arrays, random (encoded) protected headers."""
    body = list(items)
    if body and isinstance(header_map, dict):
        body[0] = cbor2.dumps(header_map)
    message = cbor2.dumps(cbor2.CBORTag(18, body) if tagged else body)
    assert _outcome(message) != "ok"


@FUZZ
@given(st.sampled_from(GOOD), st.data())
def test_mutated_valid_messages(original: bytes, data: st.DataObject) -> None:
    message = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["set", "insert", "delete"]))
        pos = data.draw(st.integers(0, max(len(message) - 1, 0)))
        if op == "set" and message:
            message[pos] = data.draw(st.integers(0, 255))
        elif op == "insert":
            message[pos:pos] = data.draw(st.binary(min_size=1, max_size=3))
        elif message:
            del message[pos]
    outcome = _outcome(bytes(message))
    if bytes(message) != original:
        # the event policy must refuse every changed byte string
        try:
            verify_sign1(bytes(message), KEYS, policy=EVENT_POLICY)
        except VerificationError:
            pass
        else:
            raise AssertionError(f"mutated message verified: {bytes(message).hex()}")
    else:
        assert outcome == "ok"


EVENT_SIGNER = ED
EVENT_PLAIN: dict = {}


def _event_plain() -> dict:
    import json

    from tests.support.signing import example_plain

    if not EVENT_PLAIN:
        EVENT_PLAIN.update(json.loads(json.dumps(example_plain("damaged-mismatch"))))
        EVENT_PLAIN["kid"] = EVENT_SIGNER.kid.hex()
    return json.loads(json.dumps(EVENT_PLAIN))


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@FUZZ
@given(st.data(), cbor_values)
def test_signed_bodies_with_a_wrong_value_are_bad_payload(
    data: st.DataObject, value: object
) -> None:
    """A correctly signed envelope around a damaged body: bad_payload (or ok), never a crash."""
    plain = _event_plain()
    path = data.draw(st.sampled_from(_paths(plain)))
    node = plain
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        payload = cbor2.dumps(plain, canonical=True)
    except Exception:
        return  # not encodable (e.g. a map with unhashable keys): nothing to sign
    try:
        verify_event(sign1(payload, EVENT_SIGNER), KEYS)
    except VerificationError as exc:
        assert exc.reason in {"bad_payload", "kid_mismatch"}


def _split_both(message: bytes) -> tuple[object, object]:
    """``_split`` under the event policy, and the same with the CBOR decoder alone."""
    outcomes: list[object] = []
    for policy in (EVENT_POLICY, replace(EVENT_POLICY, preferred_encoding=False)):
        try:
            outcomes.append(_split(message, policy))
        except VerificationError as exc:
            outcomes.append(exc.reason)
    fast, decoded = outcomes
    # the encoding check the event policy adds (a non-empty unprotected map is refused later)
    if (
        isinstance(decoded, list)
        and not decoded[1]
        and encode_sign1(decoded[0], decoded[2], decoded[3]) != message
    ):
        decoded = "non_canonical"
    return fast, decoded


@FUZZ
@given(
    st.binary(max_size=70),
    st.binary(max_size=300),
    st.binary(max_size=70),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3),
)
def test_envelope_read_by_hand_equals_the_cbor_decoder(
    protected: bytes, payload: bytes, signature: bytes, edits: list[tuple[int, int]]
) -> None:
    # the event policy reads its one byte form by hand: same parts, same refusals
    message = bytearray(encode_sign1(protected, payload, signature))
    for at, value in edits:
        if at < len(message):
            message[at] = value
        else:
            message.append(value)
    fast, decoded = _split_both(bytes(message))
    assert fast == decoded


def _bstr_with_head(data: bytes, info: int) -> bytes:
    """``data`` as a CBOR byte string whose length takes head ``info`` (24..27) if it fits."""
    width = 1 << (info - 24)
    if len(data) >= 1 << (8 * width):
        return cbor2.dumps(data)
    return bytes([0x40 | info]) + len(data).to_bytes(width, "big") + data


@FUZZ
@given(
    st.binary(max_size=40),
    st.binary(max_size=300),
    st.binary(max_size=70),
    st.tuples(*[st.sampled_from([None, 24, 25, 26, 27])] * 3),
)
def test_longer_heads_than_needed_are_refused_as_by_the_decoder(
    protected: bytes, payload: bytes, signature: bytes, heads: tuple[int | None, ...]
) -> None:
    parts = [
        cbor2.dumps(part) if info is None else _bstr_with_head(part, info)
        for part, info in zip((protected, payload, signature), heads, strict=True)
    ]
    message = b"\xd2\x84" + parts[0] + b"\xa0" + parts[1] + parts[2]
    fast, decoded = _split_both(message)
    assert fast == decoded


@FUZZ
@given(st.binary(max_size=300))
def test_envelope_read_by_hand_equals_the_cbor_decoder_on_any_bytes(data: bytes) -> None:
    for message in (data, b"\xd2\x84" + data):
        fast, decoded = _split_both(message)
        assert fast == decoded
