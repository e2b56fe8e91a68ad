"""Receipts on both hops, with real Mosquitto processes and the ingest on SQLite.

station outbox -(site broker)-> gateway: deleted on the gateway's signed receipt;
gateway outbox -(upstream broker)-> ingest: deleted on the ingest's signed receipt.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.dataform import from_plain
from edge_agent.event_codec import encode_plain, event_to_plain
from edge_agent.gateway.pipeline import Gateway
from edge_agent.ingest.records import Query, find
from edge_agent.ingest.service import Ingest
from edge_agent.signing.cose import sign1
from edge_agent.signing.keys import PUBLIC_KEY_FILE, init_keys
from edge_agent.signing.trust import TrustStore
from edge_agent.uplink.outbox import OutboxMessage
from edge_agent.uplink.settings import UplinkSettings
from edge_agent.uplink.station_uplink import StationUplink, station_uplink
from tests.support.gateway import SITE, Rig, wait_until
from tests.support.ingest import ingest_settings
from tests.support.ingest_receipts import ingest_key_dir, ingest_receipt_trust, sample

pytestmark = pytest.mark.timeout(240)


def _gateway(rig: Rig) -> Gateway:
    """A gateway with receipts both ways: signs for the stations, trusts the ingest's key."""
    key_dir = rig.workdir / "gwkey"
    init_keys(key_dir)
    store = TrustStore.load(rig.workdir / "gateway-keys.json", create=True)
    store.add((key_dir / PUBLIC_KEY_FILE).read_bytes(), station="", site=SITE)
    store.save()
    gw = Gateway(
        rig.settings(
            receipt_key_dir=str(key_dir),
            upstream_receipts_trust=str(ingest_receipt_trust(rig.workdir)),
            upstream_receipt_timeout_s=1.0,
        )
    )
    gw.start()
    assert gw.site.subscribed.wait(20)
    assert gw.upstream.link.wait_subscribed(20)
    return gw


def _station(rig: Rig, name: str) -> StationUplink:
    """The real station uplink behind the gateway (uplink.receipts required)."""
    plain: dict[str, object] = {
        "mqtt": {
            "port": rig.site.port,
            "client_id": f"station-{name}",
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            "tls": {
                "enabled": True,
                "ca_file": str(rig.pki / "ca.crt"),
                "cert_file": str(rig.pki / f"{name}.crt"),
                "key_file": str(rig.pki / f"{name}.key"),
            },
        },
        "outbox": {"min_free_disk_bytes": 0},
        "receipts_trust": str(rig.workdir / "gateway-keys.json"),
        "receipt_timeout_s": 2.0,
    }
    uplink = station_uplink(
        site=SITE,
        station=name,
        data_dir=rig.workdir / f"station-{name}",
        settings=from_plain(UplinkSettings, plain),
    )
    uplink.publisher.start()
    assert uplink.publisher.link.wait_subscribed(20)
    return uplink


def _ingest(rig: Rig, db_url: str) -> Ingest:
    settings = ingest_settings(
        rig.workdir, rig.upstream, db_url, receipt_key_dir=str(ingest_key_dir(rig.workdir))
    )
    ingest = Ingest(settings)
    ingest.start()
    assert ingest.subscriber.subscribed.wait(20)
    return ingest


@pytest.fixture
def chain(rig: Rig) -> Iterator[tuple[Gateway, dict[str, StationUplink]]]:
    gw = _gateway(rig)
    stations: dict[str, StationUplink] = {}
    try:
        for name in ("st01", "st02"):
            stations[name] = _station(rig, name)
        yield gw, stations
    finally:
        for uplink in stations.values():
            uplink.publisher.stop()
            uplink.outbox.close()
        gw.stop()


def _submit(rig: Rig, uplink: StationUplink, photo: bytes | None = None) -> tuple[str, bytes]:
    st = rig.stations[uplink.topics.station]
    event, signed = st.next_event(evidence=(photo,) if photo else ())
    companions = [OutboxMessage(uplink.topics.evidence(event.event_id), photo, event.event_id)]
    uplink.publisher.submit(
        uplink.topics.event, signed, event.event_id, companions=companions if photo else []
    )
    return event.event_id, signed


def test_every_event_is_stored_once_and_leaves_the_gateway_only_on_the_ingest_receipt(
    rig: Rig, chain: tuple[Gateway, dict[str, StationUplink]], tmp_path: Path
) -> None:
    gw, stations = chain
    registry = gw.metrics.registry
    sent: dict[str, bytes] = {}
    # 1. no ingest yet: the gateway accepts (the stations' rows go) and forwards (upstream
    # PUBACK), but keeps every row and sends it again after upstream_receipt_timeout_s
    for _ in range(3):
        for uplink in stations.values():
            event_id, signed = _submit(rig, uplink)
            sent[event_id] = signed
    assert wait_until(lambda: all(u.outbox.depth == 0 for u in stations.values()), 30)
    assert wait_until(lambda: gw.outbox.state_counts()["sent"] == len(sent), 30)
    assert wait_until(
        lambda: sample(registry, "gateway_upstream_published_total") >= 2 * len(sent), 30
    ), "the held rows were not sent again"
    assert gw.outbox.depth == len(sent)
    assert sample(registry, "gateway_upstream_receipts_total", status="accepted") == 0
    # 2. the ingest comes: the next re-send reaches it, its receipts empty the gateway outbox
    db_url = f"sqlite:///{tmp_path / 'ingest.sqlite3'}"
    ingest = _ingest(rig, db_url)
    photos: dict[str, bytes] = {}
    try:
        assert wait_until(lambda: gw.outbox.depth == 0, 60), gw.outbox.state_counts()
        assert ingest.store.count() == len(sent)
        # 3. with the ingest running, events with their photos
        for i in range(3):
            for name, uplink in stations.items():
                photo = f"jpeg {name} {i}".encode() * 40 if i != 1 else None
                event_id, signed = _submit(rig, uplink, photo)
                sent[event_id] = signed
                if photo is not None:
                    photos[event_id] = photo
        assert wait_until(lambda: ingest.store.count() == len(sent), 60), ingest.store.count()
        assert wait_until(lambda: gw.outbox.depth == 0, 60), gw.outbox.state_counts()
        assert all(u.outbox.depth == 0 for u in stations.values())
        for photo in photos.values():
            assert ingest.evidence.get(hashlib.sha256(photo).hexdigest()) == photo
        accepted = sample(registry, "gateway_upstream_receipts_total", status="accepted")
        assert accepted >= len(sent)  # re-sends are answered again (duplicate)
        assert sample(registry, "gateway_upstream_receipts_total", status="rejected") == 0
        assert _ignored(gw) == 0
        for event_id, signed in sent.items():
            (row,) = find(ingest.store, Query(event_id=event_id))
            assert row.cose == signed  # stored once, with the station's exact bytes
    finally:
        ingest.stop()


def test_an_event_the_ingest_refuses_is_held_at_the_gateway_with_the_reason(
    rig: Rig,
    chain: tuple[Gateway, dict[str, StationUplink]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gw, stations = chain
    ingest = _ingest(rig, f"sqlite:///{tmp_path / 'ingest.sqlite3'}")
    try:
        # validly signed, but no v1 event (no triage): the gateway checks only the fields it
        # routes on (full_body_check = false) and forwards it; the ingest refuses it
        st = rig.stations["st01"]
        event, _ = st.next_event()
        plain = event_to_plain(event)
        del plain["triage"]
        invalid = sign1(encode_plain(plain), st.signer)
        uplink = stations["st01"]
        uplink.publisher.submit(uplink.topics.event, invalid, event.event_id)
        good_id, _ = _submit(rig, stations["st02"])

        def held() -> list[tuple[str, str | None]]:
            return [(r.state, r.reason) for r in gw.outbox.rows_for(event.event_id)]

        assert wait_until(lambda: held() == [("rejected", "bad_payload")], 30), held()
        assert wait_until(lambda: gw.outbox.depth == 1, 30)  # the good one went
        assert uplink.outbox.depth == 0  # the gateway accepted it from the station
        registry = gw.metrics.registry
        assert sample(registry, "gateway_upstream_receipts_total", status="rejected") == 1
        assert sample(registry, "gateway_upstream_outbox_rows", state="rejected") == 1
        assert [r.reason for r in ingest.store.refusals()] == ["bad_payload"]
        assert ingest.store.count() == 1 and find(ingest.store, Query(event_id=good_id))
        # held: not due again even an hour later, only an operator sends it again
        assert gw.outbox.fetch(0, 10, now=time.time() + 3600) == []
        capsys.readouterr()
        outbox = str(gw.settings.outbox_path)
        assert main(["outbox", "--path", outbox, "list", "--json"]) == 0
        (listed,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert (listed["key"], listed["state"], listed["reason"]) == (
            event.event_id,
            "rejected",
            "bad_payload",
        )
        # an operator sends it again: the ingest refuses it again, the row is held again
        assert main(["outbox", "--path", outbox, "retry", str(listed["id"])]) == 0
        assert wait_until(lambda: len(ingest.store.refusals()) == 2, 30)
        assert wait_until(lambda: held() == [("rejected", "bad_payload")], 30), held()
    finally:
        ingest.stop()


def _ignored(gw: Gateway) -> float:
    """Receipts the gateway ignored, all reasons."""
    return sum(
        s.value
        for metric in gw.metrics.registry.collect()
        for s in metric.samples
        if s.name == "gateway_upstream_receipts_ignored_total"
    )
