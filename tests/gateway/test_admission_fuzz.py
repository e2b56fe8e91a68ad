"""hypothesis: arbitrary bytes and topics never crash the gateway's message handling."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.dataform import from_plain
from edge_agent.gateway.admission import Admission, Forward, Hold, Reject
from edge_agent.gateway.settings import GatewaySettings
from edge_agent.gateway.state import GatewayState
from edge_agent.signing.trust import TrustStore
from tests.support.gateway import SITE, SimStation

EVENT_TOPIC = f"battrace/v1/{SITE}/st01/event"


@pytest.fixture(scope="module")
def admission(tmp_path_factory: pytest.TempPathFactory) -> Admission:
    tmp = tmp_path_factory.mktemp("fuzz")
    station = SimStation(SITE, "st01", tmp / "keys")
    trust = TrustStore.load(tmp / "trust.json", create=True)
    trust.add(station.public_pem.read_bytes(), station="st01", site=SITE)
    s = from_plain(GatewaySettings, {"data_dir": str(tmp), "max_message_bytes": 4096})
    adm = Admission(settings=s, state=GatewayState(s.state_path), trust=trust)
    adm.station = station  # type: ignore[attr-defined]
    return adm


_cbor_leaf = st.one_of(st.integers(), st.binary(max_size=40), st.text(max_size=20), st.none())
_cbor = st.recursive(
    _cbor_leaf,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            _cbor_leaf.filter(lambda x: x is not None and not isinstance(x, bytes)),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=6000))
def test_arbitrary_bytes_on_the_event_topic_are_rejected(
    admission: Admission, payload: bytes
) -> None:
    decision = admission.decide(EVENT_TOPIC, payload)
    assert isinstance(decision, Reject)
    assert decision.reason and decision.reason != "internal"
    admission.rollback()


@settings(max_examples=300, deadline=None)
@given(_cbor, st.sampled_from([None, 18, 98, 61]))
def test_arbitrary_cbor_structures_are_rejected(
    admission: Admission, body: object, tag: int | None
) -> None:
    payload = cbor2.dumps(cbor2.CBORTag(tag, body) if tag is not None else body)
    decision = admission.decide(EVENT_TOPIC, payload)
    assert isinstance(decision, Reject) and decision.reason != "internal"
    admission.rollback()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120), st.binary(max_size=200))
def test_arbitrary_topics_never_crash(admission: Admission, topic: str, payload: bytes) -> None:
    decision = admission.decide(topic, payload)
    assert isinstance(decision, Reject | Hold)
    admission.rollback()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 400), st.integers(0, 255))
def test_any_single_byte_change_of_a_signed_event_is_rejected(
    admission: Admission, position: int, flip: int
) -> None:
    station: SimStation = admission.station  # type: ignore[attr-defined]
    _, signed = station.next_event()
    position %= len(signed)
    tampered = signed[:position] + bytes([signed[position] ^ (flip or 1)]) + signed[position + 1 :]
    decision = admission.decide(EVENT_TOPIC, tampered)
    admission.rollback()
    assert isinstance(decision, Reject), (position, decision)
    assert isinstance(admission.decide(EVENT_TOPIC, signed), Forward)  # the original is fine
    admission.rollback()
