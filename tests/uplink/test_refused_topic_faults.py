"""Fault test (issue 13, 1): the broker is down when the station starts, then comes up with an
ACL that refuses the station's event topic. Whatever the protocol setting, nothing may leave
the outbox: the event stays stored and visible in ``edge-agent outbox status``.

With MQTT 5 the PUBACK carries 0x87 "Not authorized" and the row keeps that reason. With
3.1.1 Mosquitto drops the message and still sends a PUBACK, so only a receipt from the gateway
can tell (branch receipts); that case is expected to fail until receipts are merged.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from edge_agent.cli import main
from edge_agent.uplink.settings import MqttSettings, OutboxSettings, UplinkSettings
from edge_agent.uplink.station_uplink import station_uplink
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber

pytestmark = pytest.mark.timeout(120)

# anonymous clients: the station may announce its status, not publish events
ACL = """topic write battrace/v1/site-1/bench-1/status
topic read battrace/v1/#
"""

NEEDS_RECEIPTS = pytest.mark.xfail(
    strict=True,
    reason="needs receipts (branch receipts): a 3.1.1 PUBACK does not say the ACL dropped it",
)


def _outbox_status(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["outbox", "--path", str(path), "status", "--json"]) == 0
    status: dict[str, object] = json.loads(capsys.readouterr().out)
    return status


@pytest.mark.parametrize("protocol", ["auto", "5", pytest.param("3.1.1", marks=NEEDS_RECEIPTS)])
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


def _wait(predicate: object, timeout: float) -> bool:
    from edge_agent.uplink.mqtt import wait_until

    return wait_until(predicate, timeout)  # type: ignore[arg-type]
