"""The site Mosquitto configuration (hardware/mosquitto) run for real with its ACL and TLS."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.conftest import require_real_part
from tests.support.gateway import MOSQUITTO, SITE, Broker, site_broker, tls_client

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def broker(tmp_path: Path, pki: Path) -> Iterator[Broker]:
    require_real_part(Path(MOSQUITTO).exists(), f"mosquitto ({MOSQUITTO})")
    b = site_broker(tmp_path / "site", pki)
    b.start()
    yield b
    b.stop()


def _publish_rc(pki: Path, port: int, name: str, topic: str) -> int:
    """Publish QoS 1 as certificate ``name``; the PUBACK reason code (0 = accepted)."""
    client = tls_client(pki, name)
    done = threading.Event()
    codes: list[int] = []

    def on_publish(
        _c: mqtt.Client, _u: object, _mid: int, reason: mqtt.ReasonCode, _p: object
    ) -> None:
        codes.append(reason.value)
        done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, b"x", qos=1)
        assert done.wait(10), "no PUBACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


def test_station_publishes_only_under_its_own_topics(broker: Broker, pki: Path) -> None:
    seen: list[str] = []
    got = threading.Event()
    gw = tls_client(pki, "gateway")
    gw.on_message = lambda _c, _u, m: (seen.append(m.topic), got.set())
    subscribed = threading.Event()
    gw.on_subscribe = lambda *_: subscribed.set()
    gw.connect("127.0.0.1", broker.port)
    gw.subscribe("battrace/v1/+/+/event", qos=1)
    gw.loop_start()
    try:
        assert subscribed.wait(10)
        assert _publish_rc(pki, broker.port, "st01", f"battrace/v1/{SITE}/st01/event") == 0
        assert got.wait(10)
        # 0x87 "not authorized": another station's subtree, another site, outside the tree
        assert _publish_rc(pki, broker.port, "st01", f"battrace/v1/{SITE}/st02/event") == 0x87
        assert _publish_rc(pki, broker.port, "st01", "battrace/v1/site-b/st01/event") == 0x87
        assert _publish_rc(pki, broker.port, "st01", "battrace/v1/quarantine/x") == 0x87
        assert _publish_rc(pki, broker.port, "st02", f"battrace/v1/{SITE}/st02/event") == 0
    finally:
        gw.disconnect()
        gw.loop_stop()
    assert sorted(seen) == [f"battrace/v1/{SITE}/st01/event", f"battrace/v1/{SITE}/st02/event"]


def test_client_without_certificate_is_refused(broker: Broker, pki: Path) -> None:
    client = tls_client(pki, None)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        client.connect("127.0.0.1", broker.port)
        # TLS 1.3 reports the missing certificate only on the first read
        for _ in range(50):
            rc = client.loop(timeout=0.1)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                raise ConnectionError(f"loop rc {rc}")
    assert not client.is_connected()


def test_config_turns_on_durable_persistence() -> None:
    conf = (Path(__file__).resolve().parents[2] / "hardware/mosquitto/site.conf").read_text()
    lines = {
        ln.split()[0]: ln.split()[1] for ln in conf.splitlines() if ln and not ln.startswith("#")
    }
    assert lines["persistence"] == "true"
    assert int(lines["autosave_interval"]) <= 5
    assert int(lines["max_queued_messages"]) >= 100_000
    assert lines["require_certificate"] == "true" and lines["use_identity_as_username"] == "true"
    assert lines["allow_anonymous"] == "false"
