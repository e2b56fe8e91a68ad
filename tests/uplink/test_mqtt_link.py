"""MqttLink against real brokers: TLS with client certs, passwords, ACL refusals, Last Will on
SIGKILL, MQTT 5 -> 3.1.1 fallback (amqtt speaks only 3.1.1), forced 3.1.1."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.errors import ConfigError
from edge_agent.uplink.mqtt import LinkEvent, MqttLink, status_messages
from edge_agent.uplink.outbox import Outbox, OutboxMessage
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.settings import MqttSettings, TlsSettings
from edge_agent.uplink.topics import StationTopics
from tests.conftest import ROOT
from tests.support.mosquitto import (
    MosquittoBroker,
    RecordingSubscriber,
    make_tls_material,
)

TOPICS = StationTopics("site-1", "bench-1")
ACL = """user bench-1
topic write battrace/v1/site-1/bench-1/#
topic read battrace/v1/#
"""


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """TLS listener requiring a client certificate, password auth and an ACL."""
    tls = make_tls_material(tmp_path / "pki")
    broker = MosquittoBroker(
        tmp_path / "secure", tls=tls, users={"bench-1": "s3cret"}, acl=ACL, persistence=False
    )
    broker.start()
    yield broker
    broker.kill()


def _tls_settings(broker: MosquittoBroker, **kw: object) -> MqttSettings:
    assert broker.tls is not None
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": broker.port,
        "username": "bench-1",
        "password": "s3cret",
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.5,
        "tls": TlsSettings(
            enabled=True,
            ca_file=broker.tls.ca,
            cert_file=broker.tls.client_cert,
            key_file=broker.tls.client_key,
        ),
    }
    base.update(kw)
    return MqttSettings(**base)  # type: ignore[arg-type]


def test_tls_client_cert_password_and_acl_refusal(
    tmp_path: Path, secure_broker: MosquittoBroker
) -> None:
    outbox = Outbox(tmp_path / "o.db")
    pub = OutboxPublisher(
        outbox, _tls_settings(secure_broker, protocol="5"), client_id="bench-1", retry_min_s=30.0
    )
    pub.start()
    try:
        assert pub.link.wait_connected(15), secure_broker.log()
        assert pub.link.protocol == "5"
        ok = pub.submit(TOPICS.event, b"ok|1", "ok")
        assert ok.result(15) > 0
        # another station's topic is denied by the ACL: MQTT 5 PUBACK says "Not authorized";
        # the row stays stored with the reason and backs off, nothing is lost
        denied = pub.submit("battrace/v1/site-1/bench-2/event", b"no|1", "no")
        assert _wait(lambda: outbox.rows() and outbox.rows()[0].last_error is not None, 15)
        row = outbox.rows()[0]
        assert row.key == "no" and row.last_error == "Not authorized" and row.attempts == 1
        assert not denied.done()
        assert pub.stats.failures == 1
    finally:
        pub.stop()
        outbox.close()


def test_tls_wrong_password_never_connects_and_does_not_crash(
    secure_broker: MosquittoBroker,
) -> None:
    events: list[LinkEvent] = []
    link = MqttLink(
        _tls_settings(secure_broker, password="wrong"), client_id="bench-1", sink=events.append
    )
    link.start()
    try:
        assert not link.wait_connected(1.5)
        assert [e for e in events if e.kind == "connected"] == []
    finally:
        link.stop()


def test_tls_config_errors_are_typed(tmp_path: Path) -> None:
    missing = MqttSettings(tls=TlsSettings(enabled=True, ca_file=tmp_path / "nope.pem"))
    with pytest.raises(ConfigError, match="ca_file"):
        MqttLink(missing, client_id="x", sink=lambda e: None)
    with pytest.raises(ConfigError):
        MqttLink(MqttSettings(), client_id="", sink=lambda e: None)


def _wait(pred: object, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_last_will_published_when_publisher_is_killed(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    sub = RecordingSubscriber(
        mosquitto_broker, TOPICS.status, client_id="will-watch", key_of=lambda t, p: p.decode()
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.uplink.publisher_proc",
            "--db",
            str(tmp_path / "w.db"),
            "--port",
            str(mosquitto_broker.port),
            "--prefix",
            "will",
            "--count",
            "1",
            "--status",
            "--timeout",
            "600",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        status = status_messages(TOPICS.status, "proc-will")
        assert sub.wait_for([status.online.decode()], 20) == set()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert sub.wait_for([status.offline.decode()], 20) == set()
        last = sub.messages[-1]
        assert last[0] == TOPICS.status and last[1] == status.offline
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        if proc.stdout:
            proc.stdout.close()
        sub.close()


def test_auto_protocol_falls_back_to_311_and_delivers(tmp_path: Path, amqtt_broker: int) -> None:
    outbox = Outbox(tmp_path / "o.db")
    settings = MqttSettings(
        host="127.0.0.1",
        port=amqtt_broker,
        protocol="auto",
        reconnect_min_s=0.05,
        reconnect_max_s=0.5,
    )
    pub = OutboxPublisher(outbox, settings, client_id="fallback")
    pub.start()
    try:
        fut = pub.submit(TOPICS.event, b"fb|1", "fb")
        assert fut.result(20) > 0
        assert pub.link.protocol == "3.1.1"
        assert outbox.depth == 0 or pub.wait_idle(5)
    finally:
        pub.stop()
        outbox.close()


def test_forced_311_on_mosquitto(tmp_path: Path, mosquitto_broker: MosquittoBroker) -> None:
    sub = RecordingSubscriber(mosquitto_broker, TOPICS.event)
    outbox = Outbox(tmp_path / "o.db")
    settings = MqttSettings(host="127.0.0.1", port=mosquitto_broker.port, protocol="3.1.1")
    pub = OutboxPublisher(outbox, settings, client_id="v311")
    pub.start()
    try:
        pub.enqueue([OutboxMessage(TOPICS.event, f"k{i}|".encode(), f"k{i}") for i in range(50)])
        assert pub.wait_idle(15)
        assert pub.link.protocol == "3.1.1"
        assert sub.wait_for([f"k{i}" for i in range(50)], 10) == set()
    finally:
        pub.stop()
        sub.close()
        outbox.close()


def test_auto_falls_back_when_a_311_broker_never_answers_a_v5_connect_with_will(
    tmp_path: Path, amqtt_broker: int
) -> None:
    # amqtt leaves an MQTT 5 CONNECT carrying a Last Will unanswered; after the CONNACK timeout
    # a plain MQTT 5 CONNECT asks again, amqtt answers it with return code 1 ("unsupported
    # protocol version") and only that answer switches to 3.1.1
    outbox = Outbox(tmp_path / "o.db")
    settings = MqttSettings(host="127.0.0.1", port=amqtt_broker, protocol="auto")
    pub = OutboxPublisher(
        outbox,
        settings,
        client_id="fallback-will",
        status=status_messages(TOPICS.status, "fallback-will"),
    )
    pub.start()
    try:
        fut = pub.submit(TOPICS.event, b"fbw|1", "fbw")
        assert fut.result(30) > 0
        assert pub.link.protocol == "3.1.1"
    finally:
        pub.stop()
        outbox.close()
