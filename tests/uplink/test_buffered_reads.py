"""BufferedClient: a backlog of QoS 1 messages arrives whole and in order with far fewer socket
reads than packets; packets split across reads (larger than the 64 KiB chunk) are joined; a
reconnect starts with an empty buffer."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as paho
import pytest

from edge_agent.uplink.mqtt_buffered import BufferedClient
from edge_agent.uplink.mqtt_client import connect_async, make_client
from edge_agent.uplink.settings import MqttSettings
from tests.support.gateway import wait_until
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.timeout(120)


def _publish(port: int, topic: str, payloads: list[bytes]) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for info in [client.publish(topic, p, qos=1) for p in payloads]:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


def test_backlog_arrives_whole_in_order_with_few_reads(
    mosquitto_broker: MosquittoBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = 0
    raw_recv = paho.Client._sock_recv

    def counted(self: paho.Client, bufsize: int) -> bytes:
        nonlocal reads
        reads += 1
        return raw_recv(self, bufsize)

    monkeypatch.setattr(paho.Client, "_sock_recv", counted)
    settings = MqttSettings(port=mosquitto_broker.port, protocol="5", max_inflight=100)
    client = make_client(settings, client_id="reader", config_key="t", session_expiry_s=600)
    assert isinstance(client, BufferedClient)
    got: list[bytes] = []
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(_c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        with lock:
            got.append(bytes(msg.payload))

    client.on_connect = lambda c, *_: c.subscribe("t/#", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = on_message
    connect_async(client, settings, session_expiry_s=600)
    client.loop_start()
    try:
        assert subscribed.wait(15)
        # small events, and a few larger than one read chunk (split across reads)
        sizes = [100 + (i % 7) * 50 for i in range(3000)]
        sizes[500] = sizes[1500] = 200_000
        sent = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
        client.loop_stop()  # the backlog piles up in the socket and the broker's queue
        _publish(mosquitto_broker.port, "t/a", sent)
        before = reads
        client.loop_start()
        assert wait_until(lambda: len(got) == len(sent), 60), len(got)
        assert got == sent
        assert reads - before < len(sent) // 3, (reads - before, len(sent))

        # after a broker restart the client reconnects on a new socket, buffer empty
        subscribed.clear()
        mosquitto_broker.restart(kill=True)
        assert subscribed.wait(30)
        again = [b"after restart %d" % i for i in range(200)]
        _publish(mosquitto_broker.port, "t/b", again)
        assert wait_until(lambda: len(got) == len(sent) + len(again), 30), len(got)
        assert got[len(sent) :] == again
    finally:
        client.disconnect()
        client.loop_stop()
