"""The ingest's receipt key as the gateway sees it: key, trust store, signed receipts, metrics.

``ingest_receipt_trust`` makes the key the real ingest signs with (``receipt_key_dir =
<workdir>/ingest-key``) and the gateway's ``upstream_receipts_trust`` holding its public key;
``ingest_receipt`` signs a receipt with it (or another key) as the ingest would publish it.
"""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt
from prometheus_client import CollectorRegistry

from edge_agent.ingest.acks import receipt_topic
from edge_agent.signing.keys import PUBLIC_KEY_FILE, init_keys, load_signer
from edge_agent.signing.receipts import Receipt, ReceiptItem, sign_receipt
from edge_agent.signing.signer import Signer
from edge_agent.signing.trust import TrustStore
from tests.support.mosquitto import MosquittoBroker


def ingest_key_dir(workdir: Path) -> Path:
    """The ingest's receipt key folder (created once)."""
    key_dir = workdir / "ingest-key"
    if not (key_dir / PUBLIC_KEY_FILE).exists():
        init_keys(key_dir)
    return key_dir


def ingest_receipt_trust(workdir: Path) -> Path:
    """The gateway's trust store of the ingest's receipt key (``keys trust --add``)."""
    path = workdir / "ingest-receipts-trust.json"
    store = TrustStore.load(path, create=True)
    store.add((ingest_key_dir(workdir) / PUBLIC_KEY_FILE).read_bytes(), station="", site="")
    store.save()
    return path


def ingest_signer(workdir: Path) -> Signer:
    """The ingest's receipt signer."""
    return load_signer(ingest_key_dir(workdir))


def ingest_receipt(
    signer: Signer,
    site: str,
    station: str,
    items: list[ReceiptItem],
    *,
    prefix: str = "cloud/v1",
    topic: str | None = None,
) -> tuple[str, bytes]:
    """(topic, COSE_Sign1) of a receipt for ``site``/``station``, bound to ``topic`` (default:
    that station's ingest receipt topic)."""
    where = topic or receipt_topic(prefix, site, station)
    body = Receipt(site, station, int(time.time() * 1000), tuple(items))
    return where, sign_receipt(body, signer, topic=where)


def upstream_client(broker: MosquittoBroker, client_id: str = "") -> mqtt.Client:
    """A connected client of the (TLS) upstream broker, network loop running."""
    assert broker.tls is not None
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    client.tls_set(str(broker.tls.ca), str(broker.tls.client_cert), str(broker.tls.client_key))
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A sample's value, 0 when it does not exist yet."""
    return registry.get_sample_value(name, labels) or 0.0
