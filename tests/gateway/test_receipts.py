"""End-to-end receipts with real Mosquitto: site broker (hardware ACL), gateway, station uplink.

The station side is the real ``station_uplink`` (outbox with receipts + publisher + receipt
listener) connected with its own certificate; the gateway is the real ``Gateway``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent.dataform import from_plain
from edge_agent.gateway.pipeline import Gateway
from edge_agent.signing.keys import PUBLIC_KEY_FILE, init_keys, load_signer
from edge_agent.signing.receipts import Receipt, ReceiptItem, sign_receipt
from edge_agent.signing.trust import TrustStore
from edge_agent.uplink.settings import UplinkSettings
from edge_agent.uplink.station_uplink import StationUplink, station_uplink
from tests.support.gateway import SITE, Rig, SimStation, tls_client, wait_until
from tests.support.mosquitto import RecordingSubscriber

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


def gateway_key(rig: Rig) -> Path:
    """The gateway's receipt key, and a station trust store holding it."""
    key_dir = rig.workdir / "gwkey"
    if not (key_dir / PUBLIC_KEY_FILE).exists():
        init_keys(key_dir)
        store = TrustStore.load(rig.workdir / "receipts-trust.json", create=True)
        store.add((key_dir / PUBLIC_KEY_FILE).read_bytes(), station="", site=SITE)
        store.save()
    return key_dir


def started(rig: Rig, **overrides: object) -> Gateway:
    gw = Gateway(rig.settings(receipt_key_dir=str(gateway_key(rig)), **overrides))
    gw.start()
    assert gw.site.subscribed.wait(20)
    return gw


def uplink_settings(rig: Rig, name: str, **overrides: object) -> UplinkSettings:
    gateway_key(rig)
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
        "receipts_trust": str(rig.workdir / "receipts-trust.json"),
        "receipt_timeout_s": 1.0,
        **overrides,
    }
    return from_plain(UplinkSettings, plain)


def open_station(rig: Rig, name: str, **overrides: object) -> StationUplink:
    uplink = station_uplink(
        site=SITE,
        station=name,
        data_dir=rig.workdir / f"station-{name}",
        settings=uplink_settings(rig, name, **overrides),
    )
    uplink.publisher.start()
    assert uplink.publisher.link.wait_subscribed(20)
    return uplink


def submit(uplink: StationUplink, sim: SimStation) -> str:
    event, message = sim.next_event()
    uplink.publisher.submit(uplink.topics.event, message, event.event_id)
    return event.event_id


def sample(uplink: StationUplink, name: str, labels: dict[str, str]) -> float:
    assert uplink.publisher.metrics is None
    assert uplink.receipts is not None
    metric = {"receipts": uplink.receipts.items, "ignored": uplink.receipts.ignored}[name]
    return float(metric.labels(**labels)._value.get())


def test_accepted_receipt_clears_the_row_and_a_duplicate_is_answered_again(
    rig: Rig, recorder: RecordingSubscriber
) -> None:
    gw = started(rig)
    uplink = open_station(rig, "st01")
    try:
        sim = rig.stations["st01"]
        ids = [submit(uplink, sim) for _ in range(5)]
        assert wait_until(lambda: uplink.outbox.depth == 0, 30), uplink.outbox.state_counts()
        assert sample(uplink, "receipts", {"status": "accepted"}) == 5
        assert not recorder.wait_for(["event:" + i for i in ids], 20)
        # the same event again (a lost receipt): de-duplicated upstream, accepted again here
        row_event = sim.next_event()
        uplink.publisher.submit(uplink.topics.event, row_event[1], row_event[0].event_id)
        assert wait_until(lambda: uplink.outbox.depth == 0, 30)
        uplink.publisher.submit(uplink.topics.event, row_event[1], row_event[0].event_id)
        assert wait_until(lambda: sample(uplink, "receipts", {"status": "accepted"}) == 7, 30)
        assert wait_until(lambda: uplink.outbox.depth == 0, 30)
        assert recorder.counts["event:" + row_event[0].event_id] == 1
    finally:
        uplink.publisher.stop()
        uplink.outbox.close()
        gw.stop()


def test_no_receipt_keeps_the_row_and_sends_it_again_after_the_timeout(
    rig: Rig, recorder: RecordingSubscriber
) -> None:
    uplink = open_station(rig, "st02")
    gw: Gateway | None = None
    try:
        event_id = submit(uplink, rig.stations["st02"])
        # no gateway: PUBACK from the broker makes the row "sent", nothing removes it
        assert wait_until(lambda: uplink.outbox.state_counts()["sent"] == 1, 20)
        # ... and after receipt_timeout_s it is published again (attempts grow)
        assert wait_until(lambda: uplink.outbox.rows()[0].attempts >= 2, 20)
        assert uplink.outbox.depth == 1
        gw = started(rig)
        assert wait_until(lambda: uplink.outbox.depth == 0, 30), uplink.outbox.state_counts()
        assert wait_until(lambda: recorder.counts["event:" + event_id] == 1, 20)
    finally:
        uplink.publisher.stop()
        uplink.outbox.close()
        if gw is not None:
            gw.stop()


def test_rejected_row_is_kept_listed_and_retried(rig: Rig, recorder: RecordingSubscriber) -> None:
    # st03's key is not trusted yet: the gateway rejects its event with unknown_kid
    store = TrustStore.load(rig.workdir / "trust.json")
    kid = rig.stations["st03"].signer.kid.hex()
    store._entries.pop(kid)
    store._keys.pop(bytes.fromhex(kid))
    store.save()
    gw = started(rig)
    uplink = open_station(rig, "st03")
    outbox_file = uplink.outbox.path
    try:
        event_id = submit(uplink, rig.stations["st03"])
        assert wait_until(lambda: uplink.outbox.state_counts()["rejected"] == 1, 30)
        row = uplink.outbox.rows()[0]
        assert (row.key, row.state, row.reason) == (event_id, "rejected", "unknown_kid")
        assert wait_until(lambda: uplink.outbox.rows()[0].attempts == 1, 20)  # settler commit
        time.sleep(1.5)  # longer than receipt_timeout_s: a rejected row is not re-sent
        assert uplink.outbox.rows()[0].attempts == 1
        listing = _cli("--path", str(outbox_file), "list")
        assert "rejected" in listing and "unknown_kid" in listing and event_id in listing
        # a person fixes the cause and retries
        store = TrustStore.load(rig.workdir / "trust.json")
        store.add(rig.stations["st03"].public_pem.read_bytes(), station="st03", site=SITE)
        store.save()
        # (the gateway reloads the changed trust store before its next batch)
        out = _cli("--path", str(outbox_file), "retry", str(row.id))
        assert "1 rows" in out
        uplink.publisher.rescan()
        assert wait_until(lambda: uplink.outbox.depth == 0, 30), uplink.outbox.rows()
        assert wait_until(lambda: recorder.counts["event:" + event_id] == 1, 20)
    finally:
        uplink.publisher.stop()
        uplink.outbox.close()
        gw.stop()


def _cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent", "outbox", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_forged_receipt_is_ignored_and_counted(rig: Rig) -> None:
    uplink = open_station(rig, "st01")
    try:
        event_id = submit(uplink, rig.stations["st01"])
        assert wait_until(lambda: uplink.outbox.state_counts()["sent"] == 1, 20)
        # signed by a key the station does not trust, sent with the gateway's certificate
        init_keys(rig.workdir / "forger")
        forger = load_signer(rig.workdir / "forger")
        topic = uplink.topics.receipt
        forged = sign_receipt(
            Receipt(SITE, "st01", 0, (ReceiptItem(event_id, "accepted"),)), forger, topic=topic
        )
        garbage = b"\xd2\x84not a receipt"
        client = tls_client(rig.pki, "gateway", "forger")
        client.connect("127.0.0.1", rig.site.port)
        client.loop_start()
        try:
            for payload in (forged, garbage):
                info = client.publish(topic, payload, qos=1)
                info.wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()
        assert wait_until(lambda: sample(uplink, "ignored", {"reason": "unknown_kid"}) == 1, 20)
        assert wait_until(lambda: sum(_ignored(uplink).values()) == 2, 20), _ignored(uplink)
        assert uplink.outbox.depth == 1  # still waiting for a real receipt
    finally:
        uplink.publisher.stop()
        uplink.outbox.close()


def _ignored(uplink: StationUplink) -> dict[str, float]:
    assert uplink.receipts is not None
    out: dict[str, float] = {}
    for metric in uplink.receipts.ignored.collect():
        for s in metric.samples:
            if s.name.endswith("_total"):
                out[s.labels["reason"]] = s.value
    return out
