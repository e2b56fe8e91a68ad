"""Key rotation at the gateway with real Mosquitto (site broker with the hardware ACL, TLS
upstream): statements on the key topic, the chain in the trust store, the new key's own replay
window, and every way a statement is refused (kept as a dead letter with its reason)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.event_codec import uuid7
from edge_agent.gateway.pipeline import Gateway
from edge_agent.model import IdentificationEvent
from edge_agent.signing.cose import sign1
from edge_agent.signing.events import sign_event
from edge_agent.signing.keys import init_keys, load_signer
from edge_agent.signing.rotation import (
    KeyRotation,
    encode_rotation,
    rotation_aad,
    sign_rotation,
)
from edge_agent.signing.signer import Signer
from edge_agent.signing.trust import TrustStore, parse_utc
from tests.support.gateway import (
    SITE,
    Rig,
    event_key,
    make_event,
    publish_all,
    station_client,
    wait_until,
)
from tests.support.mosquitto import RecordingSubscriber

pytestmark = pytest.mark.timeout(180)


def key_topic(station: str) -> str:
    return f"battrace/v1/{SITE}/{station}/key"


def statement(
    old: Signer, new: Signer, station: str, *, overlap_s: int = 3600
) -> tuple[str, bytes]:
    rotation = KeyRotation(
        rotation_id=uuid7(),
        site=SITE,
        station=station,
        old_kid=old.kid,
        new_key=new.public_key,
        overlap_s=overlap_s,
        issued_ms=1764921600123,
    )
    return rotation.rotation_id, sign_rotation(rotation, old, new)


def new_signer(tmp: Path, name: str) -> Signer:
    init_keys(tmp / name)
    return load_signer(tmp / name)


def up_key(topic: str, payload: bytes) -> str:
    return "key:" + topic if topic.endswith("/key") else event_key(topic, payload)


@pytest.fixture
def upstream(rig: Rig) -> Iterator[RecordingSubscriber]:
    rec = RecordingSubscriber(rig.upstream, "cloud/v1/#", client_id="rot-rec", key_of=up_key)
    yield rec
    rec.close()


@pytest.fixture
def gateway(rig: Rig) -> Iterator[Gateway]:
    gw = Gateway(rig.settings())
    gw.start()
    assert gw.site.subscribed.wait(20)
    yield gw
    gw.stop()


def rejected(gw: Gateway, reason: str) -> float:
    value = gw.metrics.registry.get_sample_value("gateway_rejected_total", {"reason": reason})
    return value or 0.0


def test_rotation_in_a_burst_accepts_every_event_once(
    rig: Rig, gateway: Gateway, upstream: RecordingSubscriber
) -> None:
    st = rig.stations["st01"]
    old = st.signer
    new = new_signer(rig.workdir, "st01-next")
    before = [st.next_event() for _ in range(10)]
    rotation_id, message = statement(old, new, "st01")
    # events held in the outbox, signed by the old key just before the switch, go after it
    held = [st.next_event() for _ in range(3)]
    st.signer = new  # the new key continues the station's (epoch, seq)
    after = [st.next_event() for _ in range(10)]
    items = [(st.topic, m) for _, m in before]
    items += [(key_topic("st01"), message)]
    items += [(st.topic, m) for _, m in after[:5] + held + after[5:]]
    client = station_client(rig.pki, rig.site.port, "st01")
    try:
        publish_all(client, items)
    finally:
        client.loop_stop()
        client.disconnect()
    ids = ["event:" + e.event_id for e, _ in before + held + after]
    assert not upstream.wait_for([*ids, "key:" + "cloud/v1/site-a/st01/key"], 30)
    assert all(upstream.counts[i] == 1 for i in ids)
    assert sum(v for k, v in upstream.counts.items() if k.startswith("event:")) == 23
    # the gateway counts a batch after forwarding it: the counter may trail the last message
    assert wait_until(
        lambda: gateway.metrics.registry.get_sample_value("gateway_accepted_total", {"kind": "key"})
    )
    assert all(rejected(gateway, r) == 0 for r in ("unknown_kid", "expired", "replay"))
    # the chain is on disk: the old key ends after the overlap, the new one speaks for st01
    store = TrustStore.load(rig.workdir / "trust.json")
    old_entry, new_entry = store.entry(old.kid.hex()), store.entry(new.kid.hex())
    assert old_entry is not None and new_entry is not None
    assert (old_entry.rotated_to, old_entry.rotation_id) == (new.kid.hex(), rotation_id)
    assert (new_entry.rotated_from, new_entry.station, new_entry.site) == (
        old.kid.hex(),
        "st01",
        SITE,
    )
    assert old_entry.not_after is not None and old_entry.rotated_at is not None
    gap = parse_utc(old_entry.not_after) - parse_utc(old_entry.rotated_at)
    assert gap.total_seconds() == 3600
    # each key has its own replay window; the new key's started at its first event
    assert gateway.state.window(new.kid.hex()).top == after[-1][0].seq
    assert gateway.state.window(old.kid.hex()).top == held[-1][0].seq


def test_new_key_window_is_its_own_and_replays_are_still_refused(
    rig: Rig, gateway: Gateway, upstream: RecordingSubscriber
) -> None:
    st = rig.stations["st02"]
    old = st.signer
    first = [st.next_event() for _ in range(3)]
    new = new_signer(rig.workdir, "st02-next")
    _, message = statement(old, new, "st02")

    def by_new(seq: int) -> tuple[IdentificationEvent, bytes]:
        event = make_event(new, site=SITE, station="st02", boot_epoch=st.boot_epoch, seq=seq)
        return event, sign_event(event, new)

    # the new key starts again at (epoch, 1): a window of its own, not a replay of the old key's
    again = [by_new(seq) for seq in (1, 2, 3)]
    client = station_client(rig.pki, rig.site.port, "st02")
    try:
        publish_all(client, [(st.topic, m) for _, m in first] + [(key_topic("st02"), message)])
        publish_all(client, [(st.topic, m) for _, m in again])
        ids = ["event:" + e.event_id for e, _ in first + again]
        assert not upstream.wait_for(ids, 30)
        assert rejected(gateway, "replay") == 0
        # new event ids under (epoch, seq) pairs each key already used: both refused
        replayed_old = replace(first[0][0], event_id=uuid7())
        publish_all(client, [(st.topic, sign_event(replayed_old, old)), (st.topic, by_new(2)[1])])
        assert wait_until(lambda: rejected(gateway, "replay") == 2, 20)
    finally:
        client.loop_stop()
        client.disconnect()


def test_refused_statements_are_kept_with_their_reason(
    rig: Rig, gateway: Gateway, upstream: RecordingSubscriber
) -> None:
    st1, st2, st3 = (rig.stations[n] for n in ("st01", "st02", "st03"))
    thief = new_signer(rig.workdir, "thief")
    target = new_signer(rig.workdir, "target")
    # forged: a key nobody trusts signs a statement naming st01's key
    body = KeyRotation(uuid7(), SITE, "st01", st1.signer.kid, target.public_key, 60, 1)
    aad = rotation_aad(SITE, "st01")
    forged = sign1(sign1(encode_rotation(body), target, external_aad=aad), thief, external_aad=aad)
    # st02's (trusted) key signing for st01, published with st01's certificate
    _, cross = statement(st2.signer, target, "st01")
    # a statement from a revoked key
    assert (
        main(
            [
                "gateway",
                "--trust-store",
                str(rig.workdir / "trust.json"),
                "trust",
                "revoke",
                st3.signer.kid.hex(),
            ]
        )
        == 0
    )
    assert wait_until(lambda: gateway.trust.entry(st3.signer.kid.hex()).revoked, 10)  # type: ignore[union-attr]
    _, revoked = statement(st3.signer, new_signer(rig.workdir, "st03-next"), "st03")
    # accepted once, then the same statement again, then a second one from the same old key
    next1 = new_signer(rig.workdir, "st01-next")
    _, good = statement(st1.signer, next1, "st01")
    _, fork = statement(st1.signer, new_signer(rig.workdir, "st01-fork"), "st01")
    # a statement for a key already in use by another station
    _, in_use = statement(st2.signer, next1, "st02")
    sends = [
        ("st01", forged),
        ("st01", cross),
        ("st03", revoked),
        ("st01", good),
        ("st01", good),
        ("st01", fork),
        ("st02", in_use),
    ]
    for station, payload in sends:
        client = station_client(rig.pki, rig.site.port, station)
        try:
            publish_all(client, [(key_topic(station), payload)])
        finally:
            client.loop_stop()
            client.disconnect()
    expected = {
        "unknown_kid": 1,
        "topic_mismatch": 1,
        "revoked": 1,
        "duplicate": 1,
        "already_rotated": 1,
        "key_in_use": 1,
    }
    assert wait_until(lambda: all(rejected(gateway, r) == n for r, n in expected.items()), 30), {
        r: rejected(gateway, r) for r in expected
    }
    held = {row.reason for row in gateway.dead_letters.rows()}
    assert held == set(expected) - {"duplicate"}
    assert all(row.topic.endswith("/key") for row in gateway.dead_letters.rows())
    # only the good statement went upstream, once; the revoked key gained no successor
    assert wait_until(lambda: upstream.counts["key:cloud/v1/site-a/st01/key"] == 1, 20)
    assert upstream.counts["key:cloud/v1/site-a/st03/key"] == 0
    store = TrustStore.load(rig.workdir / "trust.json")
    assert store.entry(st1.signer.kid.hex()).rotated_to == next1.kid.hex()  # type: ignore[union-attr]
    assert store.entry(target.kid.hex()) is None


def test_old_key_after_its_overlap_is_expired(
    rig: Rig, gateway: Gateway, upstream: RecordingSubscriber
) -> None:
    st = rig.stations["st01"]
    old = st.signer
    new = new_signer(rig.workdir, "st01-next")
    _, message = statement(old, new, "st01", overlap_s=0)
    client = station_client(rig.pki, rig.site.port, "st01")
    try:
        publish_all(client, [(key_topic("st01"), message)])

        def old_key_ended() -> bool:
            entry = gateway.trust.entry(old.kid.hex())
            if entry is None or entry.not_after is None:
                return False
            return datetime.now(UTC) > parse_utc(entry.not_after)

        assert wait_until(old_key_ended, 20)
        late, late_msg = st.next_event()
        st.signer = new
        fresh, fresh_msg = st.next_event()
        publish_all(client, [(st.topic, late_msg), (st.topic, fresh_msg)])
        assert not upstream.wait_for(["event:" + fresh.event_id], 20)
        assert wait_until(lambda: rejected(gateway, "expired") == 1, 20)
        (row,) = gateway.dead_letters.rows(reason="expired")
        assert old.kid.hex() in row.detail
        assert upstream.counts["event:" + late.event_id] == 0
    finally:
        client.loop_stop()
        client.disconnect()
