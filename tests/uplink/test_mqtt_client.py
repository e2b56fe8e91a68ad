"""The one MQTT client factory: every side (station uplink, gateway site and upstream, the
self-test probe) treats TLS files, insecure_skip_verify and protocol "auto" the same."""

from __future__ import annotations

import logging
import socket
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
from edge_agent.uplink.mqtt_client import (
    connect_probe,
    describe_connect_error,
    make_client,
    refuses_mqtt5,
    tls_problem,
)
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
    with pytest.raises(ssl.SSLError) as caught:
        connect_probe(_tls(self_signed_broker, insecure=False))
    assert tls_problem(caught.value) == "certificate verify failed: self-signed certificate"
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
    # amqtt answers a plain MQTT 5 CONNECT with return code 1 (the probe sends one) and leaves
    # the site side's CONNECT (session expiry property) unanswered: the plain CONNECT decides
    settings = MqttSettings(host="127.0.0.1", port=amqtt_broker, protocol="auto", **FAST)  # type: ignore[arg-type]
    assert connect_probe(settings) == (True, "Success")
    assert refuses_mqtt5(settings, client_id="x", config_key="uplink.mqtt")
    site = SiteSubscriber(settings, session_expiry_s=60)
    site.start()
    try:
        assert site.subscribed.wait(30)
        assert site.protocol == "3.1.1"
    finally:
        site.stop()


class _Side:
    """The uplink link or the gateway's site subscriber, behind one interface."""

    def __init__(self, side: str, settings: MqttSettings) -> None:
        if side == "uplink":
            link = MqttLink(settings, client_id="late", sink=lambda e: None)
            self.connected, self.protocol = link.wait_connected, lambda: link.protocol
            self.start, self.stop, self.watch = link.start, link.stop, link.watch
        else:
            site = SiteSubscriber(settings, session_expiry_s=60)
            self.connected, self.protocol = site.connected.wait, lambda: site.protocol
            self.start, self.stop, self.watch = site.start, site.stop, site.watch


class _Failures(logging.Handler):
    """Collects the warnings of the MQTT loggers; ``wait_for`` a text."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.cond:
            self.lines.append(record.getMessage())
            self.cond.notify_all()

    def wait_for(self, text: str, timeout: float = 20.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: any(text in line for line in self.lines), timeout)


@pytest.fixture
def failures() -> Iterator[_Failures]:
    handler = _Failures()
    loggers = [logging.getLogger(n) for n in ("edge_agent.uplink.mqtt", "edge_agent.gateway.site")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.mark.parametrize("protocol", ["auto", "5", "3.1.1"])
@pytest.mark.parametrize("side", ["uplink", "gateway site"])
def test_broker_down_at_start_then_up_keeps_the_configured_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failures: _Failures, side: str, protocol: str
) -> None:
    """Regression: an unreachable broker looked like a CONNACK timeout, and "auto" fell back to
    3.1.1 for good before the (MQTT 5) broker was even up."""
    from edge_agent.uplink import mqtt_client

    monkeypatch.setattr(mqtt_client, "CONNACK_TIMEOUT_S", 0.05)
    broker = MosquittoBroker(tmp_path / "late", persistence=False)
    settings = MqttSettings(host=broker.host, port=broker.port, protocol=protocol, **FAST)  # type: ignore[arg-type]
    link = _Side(side, settings)
    link.start()
    try:
        # the refused connection is logged as what it is, and retried
        assert failures.wait_for(f"{broker.host}:{broker.port} refused (broker not running")
        assert "refused" in link.watch.last_failure
        broker.start()  # the same port, later
        assert link.connected(20)
        assert link.protocol() == ("3.1.1" if protocol == "3.1.1" else "5")
        assert link.watch.last_failure == ""
        assert not any("3.1.1" in line for line in failures.lines)
    finally:
        link.stop()
        broker.kill()


@pytest.mark.parametrize("side", ["uplink", "gateway site"])
def test_a_silent_mqtt5_broker_is_retried_as_mqtt5(
    monkeypatch: pytest.MonkeyPatch, failures: _Failures, side: str
) -> None:
    """A CONNECT nobody answers (a hung or overloaded broker) is a timeout, not a refusal of
    MQTT 5: logged as such and retried as MQTT 5."""
    from edge_agent.uplink import mqtt_client

    monkeypatch.setattr(mqtt_client, "CONNACK_TIMEOUT_S", 0.2)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)  # accepts TCP connections (the kernel does) and never answers
        port = server.getsockname()[1]
        settings = MqttSettings(host="127.0.0.1", port=port, protocol="auto", **FAST)  # type: ignore[arg-type]
        link = _Side(side, settings)
        link.start()
        try:
            assert failures.wait_for(
                f"127.0.0.1:{port} within 0.2 s; a plain MQTT 5 CONNECT was not refused: "
                "retrying MQTT 5"
            )
            assert failures.lines.count(failures.lines[-1]) == 1  # repeats go to DEBUG
            assert link.protocol() == "5"
            assert not any("using MQTT 3.1.1" in line for line in failures.lines)
        finally:
            link.stop()


@pytest.mark.parametrize("side", ["uplink", "gateway site"])
def test_tls_failure_names_the_certificate_problem_and_retries_mqtt5(
    self_signed_broker: MosquittoBroker, failures: _Failures, side: str
) -> None:
    link = _Side(side, _tls(self_signed_broker, insecure=False))
    link.start()
    try:
        assert failures.wait_for("certificate verify failed: self-signed certificate")
        line = next(x for x in failures.lines if "certificate verify failed" in x)
        assert line.endswith("; retrying")
        assert line.startswith("TLS handshake with ")
        assert f"{self_signed_broker.host}:{self_signed_broker.port} failed: " in line
        assert link.protocol() == "5"
    finally:
        link.stop()


def test_describe_connect_error_says_what_failed() -> None:
    where = "broker:8883"
    assert "refused" in describe_connect_error(ConnectionRefusedError(111, "x"), where)
    assert (
        describe_connect_error(TimeoutError(), where) == "TCP connection to broker:8883 timed out"
    )
    wrong = ssl.SSLError(1, "wrong version number")
    wrong.reason = "WRONG_VERSION_NUMBER"  # what the ssl module sets
    assert describe_connect_error(wrong, where) == (
        "TLS handshake with broker:8883 failed: wrong version number"
    )


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
