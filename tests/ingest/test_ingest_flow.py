"""Simulated stations -> site broker -> gateway -> upstream broker -> ingest -> records, on
SQLite and PostgreSQL, with real Mosquitto processes; refusals and signed receipts."""

from __future__ import annotations

import json
from pathlib import Path

import cbor2
import paho.mqtt.client as mqtt
import pytest

from edge_agent.cli import main
from edge_agent.event_codec import encode_plain, event_to_plain
from edge_agent.gateway.pipeline import Gateway
from edge_agent.ingest.db import Database
from edge_agent.ingest.records import Query, find
from edge_agent.ingest.service import Ingest
from edge_agent.ingest.store import EventStore
from edge_agent.signing.cose import sign1
from edge_agent.signing.keys import init_keys, load_signer
from edge_agent.signing.receipts import verify_receipt
from edge_agent.signing.trust import StaticKeys
from tests.ingest.helpers import twin
from tests.support.gateway import SITE, Rig, SimStation, publish_all, station_client, wait_until
from tests.support.ingest import ingest_config_file, ingest_settings
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber

pytestmark = pytest.mark.timeout(240)


def _upstream_client(broker: MosquittoBroker) -> mqtt.Client:
    assert broker.tls is not None
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.tls_set(str(broker.tls.ca), str(broker.tls.client_cert), str(broker.tls.client_key))
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def _receipt_items(receipts: RecordingSubscriber) -> set[str]:
    """``status:event_id:reason`` of every item of every receipt received so far."""
    items: set[str] = set()
    for topic, payload, _retain in list(receipts.messages):
        if topic.endswith("/receipt/upstream"):
            body = cbor2.loads(cbor2.loads(payload).value[2])
            assert body["type"] == "receipt"
            items |= {f"{i['status']}:{i['event_id']}:{i['reason']}" for i in body["items"]}
    return items


def _missing_receipts(receipts: RecordingSubscriber, wanted: set[str], timeout: float) -> set[str]:
    wait_until(lambda: wanted <= _receipt_items(receipts), timeout)
    return wanted - _receipt_items(receipts)


def _started_ingest(settings: object) -> Ingest:
    ingest = Ingest(settings)  # type: ignore[arg-type]
    ingest.start()
    assert ingest.subscriber.subscribed.wait(20)
    return ingest


@pytest.mark.parametrize(
    ("db_url", "evidence"),
    [("sqlite", "filesystem"), ("postgresql", "filesystem"), ("sqlite", "s3")],
    indirect=True,
)
def test_station_to_records_end_to_end(
    rig: Rig, db_url: str, evidence: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    init_keys(rig.workdir / "ingest-key", "ed25519")
    settings = ingest_settings(
        rig.workdir,
        rig.upstream,
        db_url,
        receipt_key_dir=str(rig.workdir / "ingest-key"),
        **evidence,
    )
    ingest = _started_ingest(settings)
    receipts = RecordingSubscriber(
        rig.upstream, "cloud/v1/+/+/receipt/upstream", client_id="receipts"
    )
    gw = Gateway(rig.settings())
    gw.start()
    clients = {n: station_client(rig.pki, rig.site.port, n) for n in rig.stations}
    sent: dict[str, bytes] = {}
    photos: dict[str, bytes] = {}
    try:
        assert gw.site.subscribed.wait(20)
        for i in range(6):
            for name, st in rig.stations.items():
                photo = f"jpeg {name} {i}".encode() * 40
                event, signed = st.next_event(evidence=(photo,) if i % 2 == 0 else ())
                items = [(st.topic, signed)]
                if i % 2 == 0:
                    photos[event.event_id] = photo
                    items.append((f"battrace/v1/{SITE}/{name}/evidence/{event.event_id}", photo))
                publish_all(clients[name], items)
                sent[event.event_id] = signed
        assert wait_until(lambda: ingest.store.count() == len(sent), 60), ingest.store.count()
        assert wait_until(
            lambda: all(
                ingest.evidence.get(__import__("hashlib").sha256(p).hexdigest()) == p
                for p in photos.values()
            ),
            30,
        )
        # a redelivery straight to the upstream broker: accepted again, stored once
        up = _upstream_client(rig.upstream)
        first_id, first = next(iter(sent.items()))
        publish_all(up, [("cloud/v1/site-a/st01/event", first)])
        keys = {f"accepted:{eid}:stored" for eid in sent} | {f"accepted:{first_id}:duplicate"}
        assert _missing_receipts(receipts, keys, 30) == set()
        up.disconnect()
        up.loop_stop()
    finally:
        for c in clients.values():
            c.disconnect()
            c.loop_stop()
        gw.stop()
        ingest.stop()
        receipts.close()
    # receipts are signed by the ingest's key
    ingest_key = StaticKeys.of(load_signer(rig.workdir / "ingest-key").public_key)
    for topic, payload, _r in receipts.messages:
        verify_receipt(payload, ingest_key, topic=topic)
    with Database(db_url) as db:
        store = EventStore(db)
        assert store.count() == len(sent)
        for eid, signed in sent.items():
            (row,) = find(store, Query(event_id=eid))
            assert row.cose == signed  # the exact COSE bytes
    # the records commands on the same database
    cfg = ingest_config_file(rig.workdir / "ingest.toml", settings)
    assert (
        main(
            ["records", "find", "03HPB0DA0001B1D8A0000001", "--config", str(cfg), "--limit", "1000"]
        )
        == 0
    )
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {f["event_id"] for f in found} == set(sent)
    out = rig.workdir / "ledger.csv"
    assert (
        main(
            [
                "records",
                "export",
                "--config",
                str(cfg),
                "--format",
                "csv",
                "--from",
                "2026-11-27",
                "--to",
                "2026-11-27",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert len(out.read_text().splitlines()) == len(sent) + 1
    capsys.readouterr()
    assert main(["records", "verify", "--config", str(cfg)]) == 0
    report = capsys.readouterr().out
    assert f"{len(sent)} events, {len(photos)} evidence files ok, 0 missing, 0 mismatches" in report


def test_forged_unknown_key_and_invalid_events_are_refused(rig: Rig, tmp_path: Path) -> None:
    init_keys(rig.workdir / "ingest-key", "ed25519")
    db_url = f"sqlite:///{tmp_path / 'refusals.sqlite3'}"
    settings = ingest_settings(
        rig.workdir, rig.upstream, db_url, receipt_key_dir=str(rig.workdir / "ingest-key")
    )
    ingest = _started_ingest(settings)
    receipts = RecordingSubscriber(
        rig.upstream, "cloud/v1/+/+/receipt/upstream", client_id="receipts"
    )
    st = rig.stations["st01"]
    stranger = SimStation(SITE, "st01", tmp_path / "stranger")  # not in the trust store
    up = _upstream_client(rig.upstream)
    topic = "cloud/v1/site-a/st01/event"
    try:
        good_event, good = st.next_event()
        forged = bytearray(good)
        forged[-5] ^= 0x55  # a flipped signature bit
        _, unknown = stranger.next_event()
        bad_event, _ = st.next_event()
        plain = event_to_plain(bad_event)
        del plain["triage"]  # validly signed, but no v1 event
        invalid = sign1(encode_plain(plain), st.signer)
        wrong_topic_event, wrong_topic = st.next_event()
        publish_all(
            up,
            [
                (topic, bytes(forged)),
                (topic, unknown),
                (topic, invalid),
                ("cloud/v1/site-a/st02/event", wrong_topic),
                (topic, b"not cbor at all"),
                (topic, good),
            ],
        )
        assert wait_until(lambda: len(ingest.store.refusals()) == 5, 30), ingest.store.refusals()
        reasons = sorted(r.reason for r in ingest.store.refusals())
        assert reasons == sorted(
            ["bad_signature", "unknown_kid", "bad_payload", "topic_mismatch", "wrong_tag"]
        ), reasons
        assert (
            _missing_receipts(
                receipts,
                {
                    f"accepted:{good_event.event_id}:stored",
                    f"rejected:{bad_event.event_id}:bad_payload",
                    f"rejected:{wrong_topic_event.event_id}:topic_mismatch",
                },
                20,
            )
            == set()
        )
        assert ingest.store.count() == 1
    finally:
        up.disconnect()
        up.loop_stop()
        ingest.stop()
        receipts.close()


def test_a_reused_event_id_gets_a_signed_conflict_receipt_over_the_broker(
    rig: Rig, db_url: str
) -> None:
    init_keys(rig.workdir / "ingest-key", "ed25519")
    settings = ingest_settings(
        rig.workdir, rig.upstream, db_url, receipt_key_dir=str(rig.workdir / "ingest-key")
    )
    ingest = _started_ingest(settings)
    receipts = RecordingSubscriber(
        rig.upstream, "cloud/v1/+/+/receipt/upstream", client_id="receipts"
    )
    st = rig.stations["st01"]
    up = _upstream_client(rig.upstream)
    topic = "cloud/v1/site-a/st01/event"
    try:
        event, good = st.next_event()
        other = twin(st, event.event_id)
        publish_all(up, [(topic, good)])
        assert _missing_receipts(receipts, {f"accepted:{event.event_id}:stored"}, 30) == set()
        publish_all(up, [(topic, good), (topic, other)])  # a redelivery, then a reused id
        wanted = {f"accepted:{event.event_id}:duplicate", f"rejected:{event.event_id}:conflict"}
        assert _missing_receipts(receipts, wanted, 30) == set()
        assert wait_until(lambda: ingest.conflicts == 1, 10)
        assert (ingest.stored, ingest.duplicates, ingest.refused) == (1, 1, 1)
    finally:
        up.disconnect()
        up.loop_stop()
        ingest.stop()
        receipts.close()
    ingest_key = StaticKeys.of(load_signer(rig.workdir / "ingest-key").public_key)
    for where, payload, _r in receipts.messages:
        verify_receipt(payload, ingest_key, topic=where)
    with Database(db_url) as db:
        store = EventStore(db)
        assert [r.cose for r in find(store, Query(event_id=event.event_id))] == [good]
        assert [(r.reason, r.event_id) for r in store.refusals()] == [("conflict", event.event_id)]
