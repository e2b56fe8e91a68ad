"""End to end with two real Mosquitto processes: site (hardware/mosquitto config) and upstream."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cbor2
import pytest

from edge_agent.cli import main
from edge_agent.event_codec import uuid7
from edge_agent.gateway.pipeline import Gateway
from edge_agent.gateway.settings import GatewaySettings
from edge_agent.signing.events import sign_event
from edge_agent.signing.trust import TrustStore
from tests.support.gateway import GW_STATIONS as STATIONS
from tests.support.gateway import (
    SITE,
    Rig,
    SimStation,
    make_event,
    publish_all,
    station_client,
    tls_client,
    wait_until,
)
from tests.support.mosquitto import RecordingSubscriber

pytestmark = pytest.mark.timeout(180)


def started(settings: GatewaySettings) -> Gateway:
    """A started gateway whose site subscription is in place (its session exists)."""
    gw = Gateway(settings)
    gw.start()
    assert gw.site.subscribed.wait(20)
    return gw


def _rejected(gw: Gateway, reason: str) -> float:
    value = gw.metrics.registry.get_sample_value("gateway_rejected_total", {"reason": reason})
    return value or 0.0


def test_events_from_several_stations_arrive_upstream_once(
    rig: Rig, recorder: RecordingSubscriber
) -> None:
    gw = started(rig.settings())
    clients = {n: station_client(rig.pki, rig.site.port, n) for n in STATIONS}
    sent: list[tuple[str, str, bytes]] = []  # station, event id, signed bytes
    photos: dict[str, bytes] = {}
    try:
        for i in range(15):
            for name, st in rig.stations.items():
                photo = f"jpeg {name} {i}".encode() * 50
                event, signed = st.next_event(evidence=(photo,) if i % 3 == 0 else ())
                items = [(st.topic, signed)]
                if i % 3 == 0:
                    photos[event.event_id] = photo
                    items.append((f"battrace/v1/{SITE}/{name}/evidence/{event.event_id}", photo))
                    if i % 2 == 0:  # evidence first: the gateway holds it until the event
                        items.reverse()
                publish_all(clients[name], items)
                sent.append((name, event.event_id, signed))
        # A station re-sends events whose PUBACK it lost: forwarded once all the same.
        for name, _eid, signed in sent[:5]:
            publish_all(clients[name], [(rig.stations[name].topic, signed)])
        keys = {f"event:{eid}" for _, eid, _ in sent} | {f"evidence:{e}" for e in photos}
        assert recorder.wait_for(keys, timeout=60) == set()
        assert wait_until(lambda: _rejected(gw, "duplicate") == 5, 20)
        assert gw.upstream.wait_idle(20)
    finally:
        for c in clients.values():
            c.disconnect()
            c.loop_stop()
        gw.stop()
    assert all(recorder.counts[k] == 1 for k in keys), recorder.counts
    assert len(recorder.messages) == len(keys)
    got = [p for t, p, _ in recorder.messages if t.endswith("/event")]
    assert sorted(got) == sorted(s for _, _, s in sent)  # byte for byte, signature intact
    for topic, payload, _ in recorder.messages:
        if "/evidence/" in topic:
            assert payload == photos[topic.rsplit("/", 1)[1]]
            assert topic.startswith(f"cloud/v1/{SITE}/st0")
    assert gw.metrics.registry.get_sample_value("gateway_accepted_total", {"kind": "event"}) == 45
    assert (
        gw.metrics.registry.get_sample_value("gateway_accepted_total", {"kind": "evidence"}) == 15
    )


def _quarantine_listener(rig: Rig) -> tuple[object, list[tuple[str, bytes]]]:
    got: list[tuple[str, bytes]] = []
    client = tls_client(rig.pki, "gateway", client_id="quarantine-reader")
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, m: got.append((m.topic, bytes(m.payload)))
    client.connect("127.0.0.1", rig.site.port)
    client.subscribe("battrace/quarantine/#", qos=0)
    client.loop_start()
    assert subscribed.wait(10)
    return client, got


def test_bad_messages_are_rejected_with_their_reason(
    rig: Rig, recorder: RecordingSubscriber, tmp_path: Path
) -> None:
    st1, st2, st3 = (rig.stations[n] for n in STATIONS)
    store = TrustStore.load(rig.workdir / "trust.json")
    store.revoke(st3.signer.kid.hex())
    store.save()
    stranger = SimStation(SITE, "st01", tmp_path / "stranger")  # right name, key never registered
    gw = started(rig.settings(quarantine_topic="battrace/quarantine"))
    quarantine, quarantined = _quarantine_listener(rig)
    clients = {n: station_client(rig.pki, rig.site.port, n) for n in STATIONS}
    try:
        good, good_signed = st1.next_event()
        publish_all(clients["st01"], [(st1.topic, good_signed)])
        assert recorder.wait_for({f"event:{good.event_id}"}, 30) == set()

        _, signed = st1.next_event()
        forged = signed[:-1] + bytes([signed[-1] ^ 1])
        replayed = sign_event(
            make_event(st1.signer, site=SITE, station="st01", boot_epoch=1, seq=good.seq),
            st1.signer,
        )
        stale = sign_event(
            make_event(st1.signer, site=SITE, station="st01", boot_epoch=0, seq=99), st1.signer
        )
        _, unknown = stranger.next_event()
        _, foreign = st2.next_event()  # st02's genuine event, published on st01's topic
        oversized = b"\xd2" + bytes(5000)
        bad = {
            "bad_signature": forged,
            "replay": replayed,
            "unknown_kid": unknown,
            "topic_mismatch": foreign,
            "oversized": oversized,
            "not_cbor": b"\xff\xfe not cbor",
            "wrong_tag": cbor2.dumps([b"", {}, b"", b""]),
        }
        publish_all(clients["st01"], [(st1.topic, m) for m in bad.values()])
        publish_all(clients["st01"], [(st1.topic, stale)])
        _, revoked = st3.next_event()
        publish_all(clients["st03"], [(st3.topic, revoked)])
        photo_topic = f"battrace/v1/{SITE}/st01/evidence/{good.event_id}"
        orphan_topic = f"battrace/v1/{SITE}/st01/evidence/{uuid7()}"
        publish_all(clients["st01"], [(photo_topic, b"not the photo"), (orphan_topic, b"who?")])

        expected = {**dict.fromkeys(bad, 1.0), "revoked": 1.0, "evidence_mismatch": 1.0}
        expected["replay"] = 2.0  # the stale boot epoch too
        expected["evidence_unmatched"] = 1.0  # after evidence_wait_s
        assert wait_until(lambda: all(_rejected(gw, r) == n for r, n in expected.items()), 30), {
            r: _rejected(gw, r) for r in expected
        }
        assert wait_until(lambda: len(quarantined) == 11, 10), quarantined
    finally:
        for c in clients.values():
            c.disconnect()
            c.loop_stop()
        quarantine.disconnect()  # type: ignore[attr-defined]
        quarantine.loop_stop()  # type: ignore[attr-defined]
        gw.stop()
    assert dict(recorder.counts) == {f"event:{good.event_id}": 1}  # nothing bad went upstream
    assert ("battrace/quarantine/bad_signature", forged) in quarantined
    assert ("battrace/quarantine/oversized", oversized) in quarantined
    assert gw.metrics.registry.get_sample_value("gateway_accepted_total", {"kind": "event"}) == 1


def test_replay_window_and_seen_ids_survive_a_restart(
    rig: Rig, recorder: RecordingSubscriber
) -> None:
    st1 = rig.stations["st01"]
    client = station_client(rig.pki, rig.site.port, "st01")
    try:
        gw = started(rig.settings())
        first, first_signed = st1.next_event()
        publish_all(client, [(st1.topic, first_signed)])
        assert recorder.wait_for({f"event:{first.event_id}"}, 30) == set()
        gw.stop()
        gw = started(rig.settings())
        again = sign_event(
            make_event(st1.signer, site=SITE, station="st01", boot_epoch=1, seq=first.seq),
            st1.signer,
        )
        publish_all(client, [(st1.topic, first_signed), (st1.topic, again)])
        nxt, nxt_signed = st1.next_event()
        publish_all(client, [(st1.topic, nxt_signed)])
        assert recorder.wait_for({f"event:{nxt.event_id}"}, 30) == set()
        assert wait_until(lambda: _rejected(gw, "duplicate") == 1 and _rejected(gw, "replay") == 1)
        gw.stop()
    finally:
        client.disconnect()
        client.loop_stop()
    assert set(recorder.counts) == {f"event:{first.event_id}", f"event:{nxt.event_id}"}
    assert set(recorder.counts.values()) == {1}


def test_upstream_outage_burst_arrives_after_it_returns(
    rig: Rig, recorder: RecordingSubscriber
) -> None:
    gw = started(rig.settings())
    st = rig.stations["st02"]
    client = station_client(rig.pki, rig.site.port, "st02")
    try:
        rig.upstream.stop()
        assert wait_until(lambda: not gw.upstream.link.connected, 10)
        burst = [st.next_event() for _ in range(150)]
        publish_all(client, [(st.topic, signed) for _, signed in burst])
        # All of it is committed to the gateway outbox (and acked to the site broker).
        assert wait_until(lambda: gw.outbox.depth == 150, 30), gw.outbox.depth
        assert gw.metrics.registry.get_sample_value("gateway_upstream_outbox_depth") == 150
        rig.upstream.start()
        keys = {f"event:{e.event_id}" for e, _ in burst}
        assert recorder.wait_for(keys, 60) == set()
        assert gw.upstream.wait_idle(20)
    finally:
        client.disconnect()
        client.loop_stop()
        gw.stop()
    assert gw.outbox.depth == 0
    assert set(recorder.counts) == keys


def test_full_outbox_stops_acknowledging_and_loses_nothing(
    rig: Rig, recorder: RecordingSubscriber
) -> None:
    gw = started(rig.settings(outbox={"max_events": 5, "min_free_disk_bytes": 0}))
    st = rig.stations["st03"]
    client = station_client(rig.pki, rig.site.port, "st03")
    try:
        rig.upstream.stop()
        events = [st.next_event() for _ in range(12)]
        publish_all(client, [(st.topic, signed) for _, signed in events])
        # The outbox refuses the rest; they stay unacknowledged at the site broker.
        assert wait_until(lambda: gw.outbox.depth == 5, 20), gw.outbox.depth
        registry = gw.metrics.registry
        assert wait_until(
            lambda: registry.get_sample_value("gateway_accepted_total", {"kind": "event"}) == 5
        )
        # the other 7 are held back unacknowledged (the worker keeps retrying them): nothing
        # more is accepted while the outbox is full, and all 12 arrive once upstream returns
        time.sleep(0.5)
        assert registry.get_sample_value("gateway_accepted_total", {"kind": "event"}) == 5
        assert gw.outbox.depth == 5
        rig.upstream.start()
        keys = {f"event:{e.event_id}" for e, _ in events}
        assert recorder.wait_for(keys, 60) == set()
        assert gw.upstream.wait_idle(20)
    finally:
        client.disconnect()
        client.loop_stop()
        gw.stop()
    assert {k: recorder.counts[k] for k in keys} == dict.fromkeys(keys, 1)


def test_revocation_takes_effect_without_a_restart(rig: Rig, recorder: RecordingSubscriber) -> None:
    gw = started(rig.settings())
    st = rig.stations["st02"]
    client = station_client(rig.pki, rig.site.port, "st02")
    try:
        before, signed = st.next_event()
        publish_all(client, [(st.topic, signed)])
        assert recorder.wait_for({f"event:{before.event_id}"}, 30) == set()
        assert (
            main(
                [
                    "gateway",
                    "--trust-store",
                    str(rig.workdir / "trust.json"),
                    "trust",
                    "revoke",
                    st.signer.kid.hex(),
                ]
            )
            == 0
        )
        trust = rig.workdir / "trust.json"
        stat = trust.stat()
        os.utime(trust, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # coarse clocks
        _, after = st.next_event()
        publish_all(client, [(st.topic, after)])
        assert wait_until(lambda: _rejected(gw, "revoked") == 1, 20)
    finally:
        client.disconnect()
        client.loop_stop()
        gw.stop()
    assert set(recorder.counts) == {f"event:{before.event_id}"}
