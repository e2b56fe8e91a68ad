"""Key rotation reaches the backend: stations -> site broker -> gateway -> upstream -> ingest
(real Mosquitto). The ingest checks the forwarded statement against its own trust store, records
the chain there and stores the new key's events; a forged statement is refused."""

from __future__ import annotations

import shutil

import cbor2
import paho.mqtt.client as mqtt
import pytest

from edge_agent.event_codec import uuid7
from edge_agent.gateway.pipeline import Gateway
from edge_agent.ingest.service import Ingest
from edge_agent.signing.keys import init_keys, load_signer
from edge_agent.signing.rotation import KeyRotation, sign_rotation
from edge_agent.signing.trust import TrustStore
from tests.support.gateway import SITE, Rig, publish_all, station_client, wait_until
from tests.support.ingest import ingest_settings
from tests.support.mosquitto import RecordingSubscriber

pytestmark = pytest.mark.timeout(240)


def _items(receipts: RecordingSubscriber) -> set[str]:
    out: set[str] = set()
    for topic, payload, _retain in list(receipts.messages):
        if topic.endswith("/receipt/upstream"):
            body = cbor2.loads(cbor2.loads(payload).value[2])
            out |= {f"{i['status']}:{i['event_id']}:{i['reason']}" for i in body["items"]}
    return out


def _upstream_client(rig: Rig) -> mqtt.Client:
    tls = rig.upstream.tls
    assert tls is not None
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.tls_set(str(tls.ca), str(tls.client_cert), str(tls.client_key))
    client.connect(rig.upstream.host, rig.upstream.port)
    client.loop_start()
    return client


def test_the_ingest_learns_the_chain_and_stores_the_new_keys_events(rig: Rig) -> None:
    # the ingest keeps its own trust store (a copy of the gateway's before the rotation)
    shutil.copy(rig.workdir / "trust.json", rig.workdir / "ingest-trust.json")
    init_keys(rig.workdir / "ingest-key")
    settings = ingest_settings(
        rig.workdir,
        rig.upstream,
        f"sqlite:///{rig.workdir / 'ingest.sqlite3'}",
        trust_store=str(rig.workdir / "ingest-trust.json"),
        receipt_key_dir=str(rig.workdir / "ingest-key"),
    )
    ingest = Ingest(settings)
    ingest.start()
    receipts = RecordingSubscriber(rig.upstream, "cloud/v1/+/+/receipt/upstream", client_id="r")
    gw = Gateway(rig.settings())
    gw.start()
    st = rig.stations["st01"]
    old = st.signer
    init_keys(rig.workdir / "next")
    new = load_signer(rig.workdir / "next")
    rotation = KeyRotation(uuid7(), SITE, "st01", old.kid, new.public_key, 3600, 1)
    client = station_client(rig.pki, rig.site.port, "st01")
    try:
        assert ingest.subscriber.subscribed.wait(20) and gw.site.subscribed.wait(20)
        before = [st.next_event()[1] for _ in range(5)]
        st.signer = new
        after = [st.next_event()[1] for _ in range(5)]
        items = [(st.topic, m) for m in before]
        items.append((f"battrace/v1/{SITE}/st01/key", sign_rotation(rotation, old, new)))
        items += [(st.topic, m) for m in after]
        publish_all(client, items)
        assert wait_until(lambda: ingest.stored == 10, 60), (ingest.stored, ingest.refused)
        assert ingest.refused == 0
        assert wait_until(lambda: f"accepted:{rotation.rotation_id}:stored" in _items(receipts), 30)
        trust = TrustStore.load(rig.workdir / "ingest-trust.json")
        assert trust.entry(old.kid.hex()).rotated_to == new.kid.hex()  # type: ignore[union-attr]
        assert trust.entry(new.kid.hex()).station == "st01"  # type: ignore[union-attr]
        # straight onto the upstream broker: st01's new key claiming to hand over st02
        init_keys(rig.workdir / "st02-next")
        other = load_signer(rig.workdir / "st02-next")
        forged = KeyRotation(uuid7(), SITE, "st02", new.kid, other.public_key, 60, 1)
        up = _upstream_client(rig)
        try:
            info = up.publish(f"cloud/v1/{SITE}/st02/key", sign_rotation(forged, new, other), 1)
            info.wait_for_publish(20)
        finally:
            up.loop_stop()
            up.disconnect()
        wanted = f"rejected:{forged.rotation_id}:topic_mismatch"
        assert wait_until(lambda: wanted in _items(receipts), 30), _items(receipts)
        assert TrustStore.load(rig.workdir / "ingest-trust.json").entry(other.kid.hex()) is None
    finally:
        client.loop_stop()
        client.disconnect()
        gw.stop()
        receipts.close()
        ingest.stop()
