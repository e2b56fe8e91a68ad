"""The one MQTT client factory: every side (station uplink, gateway site and upstream, the
self-test probe) treats TLS files, insecure_skip_verify and protocol "auto" the same."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_agent.errors import ConfigError
from edge_agent.gateway.pipeline import Gateway
from edge_agent.gateway.settings import GatewaySettings
from edge_agent.gateway.site import SiteSubscriber
from edge_agent.uplink.mqtt import LinkEvent, MqttLink
from edge_agent.uplink.mqtt_client import connect_probe, make_client
from edge_agent.uplink.outbox import Outbox
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.settings import MqttSettings, OutboxSettings, TlsSettings
from tests.support.mosquitto import MosquittoBroker, make_self_signed_tls

FAST = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.5}


def _station_uplink(tmp_path: Path, settings: MqttSettings) -> None:
    outbox = Outbox(tmp_path / "o.db")
    try:
        OutboxPublisher(outbox, settings, client_id="station")
    finally:
        outbox.close()


def _empty_trust_store(tmp_path: Path) -> Path:
    """A gateway refuses to start without its trust store file: give it an empty one."""
    path = tmp_path / "trust.json"
    path.write_text('{"version": 1, "keys": {}}\n')
    return path


def _gateway(tmp_path: Path, **sides: MqttSettings) -> None:
    _empty_trust_store(tmp_path)
    settings = GatewaySettings(
        trust_store=tmp_path / "trust.json",
        data_dir=tmp_path / "gw",
        outbox=OutboxSettings(min_free_disk_bytes=0),
        **sides,  # type: ignore[arg-type]
    )
    Gateway(settings).stop()  # not reached when the settings are refused


SIDES: dict[str, tuple[str, Callable[[Path, MqttSettings], object]]] = {
    "station uplink": ("uplink.mqtt", _station_uplink),
    "self-test probe": ("uplink.mqtt", lambda _t, s: connect_probe(s)),
    "gateway site": ("gateway.site_mqtt", lambda t, s: _gateway(t, site_mqtt=s)),
    "gateway upstream": ("gateway.upstream_mqtt", lambda t, s: _gateway(t, upstream_mqtt=s)),
}


@pytest.mark.parametrize("side", list(SIDES))
@pytest.mark.parametrize("field", ["ca_file", "cert_file", "key_file"])
def test_missing_tls_file_is_the_same_config_error_on_every_side(
    tmp_path: Path, side: str, field: str
) -> None:
    key, build = SIDES[side]
    pem = tmp_path / "present.pem"
    pem.write_text("not used: the missing file is reported first\n")
    files = {"ca_file": pem, "cert_file": pem, "key_file": pem}
    files[field] = tmp_path / "missing" / f"{field}.pem"
    settings = MqttSettings(port=1, tls=TlsSettings(enabled=True, **files))
    with pytest.raises(ConfigError) as caught:
        build(tmp_path, settings)
    assert caught.value.key_path == f"{key}.tls.{field}"
    assert str(caught.value) == f"{key}.tls.{field}: file not found: {files[field]}"
    # the gateway refuses before it opens its databases
    assert not (tmp_path / "gw" / "state.sqlite3").exists()


def test_cert_without_key_is_refused(tmp_path: Path) -> None:
    pem = tmp_path / "c.pem"
    pem.write_text("x")
    settings = MqttSettings(tls=TlsSettings(enabled=True, cert_file=pem))
    with pytest.raises(ConfigError, match="go together") as caught:
        make_client(settings, client_id="c", config_key="gateway.site_mqtt")
    assert caught.value.key_path == "gateway.site_mqtt.tls"


@pytest.fixture
def self_signed_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """TLS with a self-signed server certificate, no client certificate asked."""
    broker = MosquittoBroker(
        tmp_path / "self-signed",
        tls=make_self_signed_tls(tmp_path / "self-signed-pki"),
        require_client_cert=False,
        persistence=False,
    )
    broker.start()
    yield broker
    broker.kill()


def _tls(broker: MosquittoBroker, *, insecure: bool) -> MqttSettings:
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        tls=TlsSettings(enabled=True, insecure_skip_verify=insecure),  # system CAs only
        **FAST,  # type: ignore[arg-type]
    )


def test_probe_verifies_unless_insecure(self_signed_broker: MosquittoBroker) -> None:
    with pytest.raises(ssl.SSLError):
        connect_probe(_tls(self_signed_broker, insecure=False))
    assert connect_probe(_tls(self_signed_broker, insecure=True)) == (True, "Success")


def test_uplink_and_site_side_connect_insecure_to_a_self_signed_broker(
    self_signed_broker: MosquittoBroker,
) -> None:
    settings = _tls(self_signed_broker, insecure=True)
    events: list[LinkEvent] = []
    link = MqttLink(settings, client_id="uplink-insecure", sink=events.append)
    site = SiteSubscriber(settings, session_expiry_s=60)
    link.start()
    site.start()
    try:
        assert link.wait_connected(20)
        assert site.subscribed.wait(20)
    finally:
        site.stop()
        link.stop()


def test_auto_protocol_falls_back_on_the_site_side_and_in_the_probe(amqtt_broker: int) -> None:
    settings = MqttSettings(host="127.0.0.1", port=amqtt_broker, protocol="auto", **FAST)  # type: ignore[arg-type]
    assert connect_probe(settings) == (True, "Success")
    site = SiteSubscriber(settings, session_expiry_s=60)
    site.start()
    try:
        assert site.subscribed.wait(30)
        assert site.protocol == "3.1.1"
    finally:
        site.stop()


@pytest.mark.parametrize("side", ["uplink", "gateway site"])
def test_auto_keeps_mqtt5_when_the_broker_comes_up_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: str
) -> None:
    """Regression: an unreachable broker looked like a CONNACK timeout, and "auto" fell back to
    3.1.1 for good before the (MQTT 5) broker was even up."""
    import edge_agent.gateway.site as site_module
    import edge_agent.uplink.mqtt as link_module
    from edge_agent.uplink import mqtt_client

    checks = threading.Semaphore(0)

    def counted(client: object) -> bool:
        checks.release()
        return mqtt_client.connack_overdue(client)  # type: ignore[arg-type]

    module = link_module if side == "uplink" else site_module
    monkeypatch.setattr(module, "CONNACK_TIMEOUT_S", 0.05)
    monkeypatch.setattr(module, "connack_overdue", counted)
    broker = MosquittoBroker(tmp_path / "late", persistence=False)
    settings = MqttSettings(host=broker.host, port=broker.port, protocol="auto", **FAST)  # type: ignore[arg-type]
    if side == "uplink":
        link = MqttLink(settings, client_id="late", sink=lambda e: None)
        connected, protocol = link.wait_connected, lambda: link.protocol
        start, stop = link.start, link.stop
    else:
        site = SiteSubscriber(settings, session_expiry_s=60)
        connected, protocol = site.connected.wait, lambda: site.protocol
        start, stop = site.start, site.stop
    start()
    try:
        for _ in range(3):  # the CONNACK timer ran several times while nothing listened
            assert checks.acquire(timeout=20)
        broker.start()
        assert connected(20)
        assert protocol() == "5"
    finally:
        stop()
        broker.kill()


def test_gateway_site_side_insecure_connects_to_a_self_signed_broker(
    tmp_path: Path, self_signed_broker: MosquittoBroker, mosquitto_broker: MosquittoBroker
) -> None:
    """Regression: the site side only turned off the hostname check, so it never connected."""
    upstream = MqttSettings(host=mosquitto_broker.host, port=mosquitto_broker.port, **FAST)  # type: ignore[arg-type]
    gateway = Gateway(
        GatewaySettings(
            site_mqtt=_tls(self_signed_broker, insecure=True),
            upstream_mqtt=upstream,
            trust_store=_empty_trust_store(tmp_path),
            data_dir=tmp_path / "gw",
            outbox=OutboxSettings(min_free_disk_bytes=0),
        )
    )
    gateway.start()
    try:
        assert gateway.site.subscribed.wait(20)
        assert gateway.upstream.link.wait_connected(20)
    finally:
        gateway.stop()
