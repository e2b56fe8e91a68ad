"""The raw paho baseline shared by the uplink and station benchmarks: QoS 1, counted PUBACKs."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class RawPaho:
    """Plain paho client, MQTT 5, QoS 1, a bounded in-flight window, counts PUBACKs."""

    def __init__(self, port: int, *, window: int = 20) -> None:
        self.acked = 0
        self.cond = threading.Condition()
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id="raw-paho",
            protocol=paho.MQTTv5,
        )
        self.client.max_inflight_messages_set(window)
        self.client.on_publish = self._on_publish
        connected = threading.Event()
        self.client.on_connect = lambda *a: connected.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not connected.wait(10):
            raise RuntimeError("raw paho could not connect")

    def _on_publish(self, *args: object) -> None:
        with self.cond:
            self.acked += 1
            self.cond.notify_all()

    def wait_acked(self, n: int, timeout: float = 300) -> None:
        """Block until ``n`` PUBACKs arrived in total."""
        end = time.monotonic() + timeout
        with self.cond:
            while self.acked < n:
                if not self.cond.wait(max(0.0, end - time.monotonic())):
                    raise TimeoutError(f"raw paho: {self.acked}/{n} acked")

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()
