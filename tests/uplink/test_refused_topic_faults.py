"""Fault test (issue 13, 1): the broker is down when the station starts, then comes up with an
ACL that refuses the station's event topic. Whatever the protocol setting, nothing may leave
the outbox: the event stays stored and visible in ``edge-agent outbox status``.

With MQTT 5 the PUBACK carries 0x87 "Not authorized" and the row keeps that reason. With
3.1.1 Mosquitto drops the message and still sends a PUBACK, so only the gateway's receipt can
tell: a station that requires receipts keeps the row as ``sent`` (and sends it again after its
receipt timeout) instead of deleting it on the PUBACK.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from edge_agent.cli import main
from edge_agent.signing.keys import PUBLIC_KEY_FILE, init_keys
from edge_agent.signing.trust import TrustStore
from edge_agent.uplink.settings import MqttSettings, OutboxSettings, UplinkSettings
from edge_agent.uplink.station_uplink import station_uplink
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber

pytestmark = pytest.mark.timeout(120)

# anonymous clients: the station may announce its status, not publish events
ACL = """topic write battrace/v1/site-1/bench-1/status
topic read battrace/v1/#
"""


def _outbox_status(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["outbox", "--path", str(path), "status", "--json"]) == 0
    status: dict[str, object] = json.loads(capsys.readouterr().out)
    return status


@pytest.mark.parametrize("protocol", ["auto", "5"])
def test_broker_down_at_start_then_up_refusing_the_event_topic_keeps_the_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    broker = MosquittoBroker(tmp_path / "broker", acl=ACL, persistence=False)  # not started
    settings = UplinkSettings(
        mqtt=MqttSettings(
            host=broker.host,
            port=broker.port,
            protocol=protocol,  # type: ignore[arg-type]
            reconnect_min_s=0.05,
            reconnect_max_s=0.3,
            retry_min_s=30.0,  # one refused attempt is enough here
        ),
        outbox=OutboxSettings(min_free_disk_bytes=0),
    )
    uplink = station_uplink(
        site="site-1",
        station="bench-1",
        data_dir=tmp_path / "data",
        settings=settings,
        registry=CollectorRegistry(),
    )
    pub, outbox = uplink.publisher, uplink.outbox
    answered = threading.Event()  # the broker answered the event's PUBLISH (any way)
    pub.on_delivered(lambda *_: answered.set())
    sub: RecordingSubscriber | None = None
    try:
        pub.start()
        delivery = pub.submit(uplink.topics.event, b"ev-1|signed bytes", "ev-1")
        assert outbox.depth == 1 and not pub.link.connected
        broker.start()  # the same port, with the ACL
        sub = RecordingSubscriber(broker, "battrace/v1/#")
        assert pub.link.wait_connected(30)
        assert pub.link.protocol == ("3.1.1" if protocol == "3.1.1" else "5")

        def refused_or_acked() -> bool:
            rows = outbox.rows()
            return answered.is_set() or bool(rows and rows[0].last_error)

        assert _wait(refused_or_acked, 30)
        pub.stop()  # commits whatever the publisher learnt
        rows = outbox.rows()
        assert [r.key for r in rows] == ["ev-1"], "the refused event left the outbox"
        assert rows[0].last_error == "Not authorized"
        assert not delivery.done()
        status = _outbox_status(outbox.path, capsys)
        assert status["depth"] == 1
        assert sub.counts["ev-1"] == 0
    finally:
        pub.stop()
        outbox.close()
        if sub is not None:
            sub.close()
        broker.kill()


def test_311_puback_of_a_dropped_event_does_not_clear_it_when_receipts_are_required(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = MosquittoBroker(tmp_path / "broker", acl=ACL, persistence=False)  # not started
    gw_keys = tmp_path / "gateway-keys"
    init_keys(gw_keys)
    trust = TrustStore.load(tmp_path / "receipts-trust.json", create=True)
    trust.add((gw_keys / PUBLIC_KEY_FILE).read_bytes(), station="", site="site-1")
    trust.save()
    settings = UplinkSettings(
        mqtt=MqttSettings(
            host=broker.host,
            port=broker.port,
            protocol="3.1.1",
            reconnect_min_s=0.05,
            reconnect_max_s=0.3,
            retry_min_s=30.0,
        ),
        outbox=OutboxSettings(min_free_disk_bytes=0),
        receipts="required",
        receipts_trust=trust.path,
        receipt_timeout_s=300.0,  # no re-send within the test
    )
    uplink = station_uplink(
        site="site-1",
        station="bench-1",
        data_dir=tmp_path / "data",
        settings=settings,
        registry=CollectorRegistry(),
    )
    pub, outbox = uplink.publisher, uplink.outbox
    answered = threading.Event()
    pub.on_delivered(lambda *_: answered.set())
    sub: RecordingSubscriber | None = None
    try:
        pub.start()
        pub.submit(uplink.topics.event, b"ev-1|signed bytes", "ev-1")
        broker.start()
        sub = RecordingSubscriber(broker, "battrace/v1/#")
        assert pub.link.wait_connected(30)
        assert _wait(lambda: bool(outbox.rows()) and outbox.rows()[0].state == "sent", 30)
        pub.stop()
        rows = outbox.rows()
        assert [(r.key, r.state) for r in rows] == [("ev-1", "sent")], "PUBACK cleared the row"
        assert _outbox_status(outbox.path, capsys)["depth"] == 1
        assert sub.counts["ev-1"] == 0  # the broker dropped it (ACL); only a receipt would tell
    finally:
        pub.stop()
        outbox.close()
        if sub is not None:
            sub.close()
        broker.kill()


def _wait(predicate: object, timeout: float) -> bool:
    from edge_agent.uplink.mqtt import wait_until

    return wait_until(predicate, timeout)  # type: ignore[arg-type]
