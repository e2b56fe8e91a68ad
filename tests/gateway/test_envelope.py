"""Event verification in the gateway: routing-field check vs the full v1 model check."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.errors import VerificationError
from edge_agent.event_codec import encode_plain, event_to_plain
from edge_agent.gateway.envelope import verify_facts
from edge_agent.signing.cose import sign1
from edge_agent.signing.trust import TrustStore
from tests.support.gateway import SITE, SimStation

NOW = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture
def station_and_trust(tmp_path: Path) -> tuple[SimStation, TrustStore]:
    st = SimStation(SITE, "st01", tmp_path / "k", alg="p256")
    trust = TrustStore.load(tmp_path / "t.json", create=True)
    trust.add(st.public_pem.read_bytes(), station="st01", site=SITE)
    return st, trust


@pytest.mark.parametrize("full", [False, True])
def test_genuine_event_gives_its_routing_facts(
    station_and_trust: tuple[SimStation, TrustStore], full: bool
) -> None:
    st, trust = station_and_trust
    event, signed = st.next_event(evidence=(b"photo",))
    facts = verify_facts(signed, trust, at=NOW, full=full)
    assert (facts.event_id, facts.site, facts.station, facts.kid) == (
        event.event_id,
        SITE,
        "st01",
        st.signer.kid.hex(),
    )
    assert (facts.boot_epoch, facts.seq) == (1, 1)
    assert facts.evidence == (event.evidence[0].sha256,)
    assert facts.key.station == "st01"


def test_body_outside_the_model_is_caught_only_by_the_full_check(
    station_and_trust: tuple[SimStation, TrustStore],
) -> None:
    st, trust = station_and_trust
    event, _ = st.next_event()
    plain = event_to_plain(event)
    del plain["triage"]  # required by the model, not needed for routing
    signed = sign1(encode_plain(plain), st.signer)
    assert verify_facts(signed, trust, at=NOW, full=False).event_id == event.event_id
    with pytest.raises(VerificationError) as err:
        verify_facts(signed, trust, at=NOW, full=True)
    assert err.value.reason == "bad_payload"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("kid", "0" * 32, "kid_mismatch"),
        ("seq", -1, "bad_payload"),
        ("seq", True, "bad_payload"),
        ("boot_epoch", "1", "bad_payload"),
        ("event_id", "not-a-uuid", "bad_payload"),
        ("station", "a/b", "bad_payload"),
        ("v", 2, "bad_payload"),
        ("evidence", [{"sha256": "xyz"}], "bad_payload"),
        ("evidence", [{"sha256": "0" * 64}] * 9, "bad_payload"),
    ],
)
def test_signed_but_malformed_routing_fields_are_rejected(
    station_and_trust: tuple[SimStation, TrustStore], field: str, value: object, reason: str
) -> None:
    st, trust = station_and_trust
    event, _ = st.next_event()
    plain = event_to_plain(event)
    plain[field] = value
    with pytest.raises(VerificationError) as err:
        verify_facts(sign1(encode_plain(plain), st.signer), trust, at=NOW, full=False)
    assert err.value.reason == reason


def test_not_a_map_body(station_and_trust: tuple[SimStation, TrustStore]) -> None:
    st, trust = station_and_trust
    for body in (b"\xff", encode_plain([1, 2]), b""):
        with pytest.raises(VerificationError) as err:
            verify_facts(sign1(body, st.signer), trust, at=NOW, full=False)
        assert err.value.reason == "bad_payload"


def test_duplicate_keys_and_trailing_bytes_are_rejected(
    station_and_trust: tuple[SimStation, TrustStore],
) -> None:
    st, trust = station_and_trust
    event, _ = st.next_event()
    body = encode_plain(event_to_plain(event))
    # a second "station" key at the end of the map (map length + 1)
    assert body[0] >> 5 == 5 and body[0] & 0x1F < 23
    twice = bytes([body[0] + 1]) + body[1:] + encode_plain("station")[0:] + encode_plain("st02")
    for bad in (twice, body + b"\x00"):
        with pytest.raises(VerificationError) as err:
            verify_facts(sign1(bad, st.signer), trust, at=NOW, full=False)
        assert err.value.reason == "bad_payload"
