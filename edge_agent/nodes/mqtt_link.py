"""MQTT link to one Wi-Fi node (paho-mqtt 2.x): the same framed lines as serial, on topics
``<prefix>/<node>/up`` (node -> agent), ``/cmd`` (agent -> node) and the retained ``/status``
("online", or "offline" from the node's Last Will). paho reconnects with bounded backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.nodes.hub import MessageHub
from edge_agent.nodes.link_base import NodeLinkBase
from edge_agent.nodes.protocol import encode_command

log = logging.getLogger("edge_agent.nodes.mqtt_link")


class MqttNodeLink(NodeLinkBase):
    """Asyncio link to one node through an MQTT broker (use ``async with``)."""

    def __init__(
        self,
        host: str,
        port: int,
        node_id: str,
        *,
        prefix: str = "battrace/nodes",
        hello_timeout_s: float = 3.0,
        node_config: Mapping[str, Any] | None = None,
        hub: MessageHub | None = None,
    ) -> None:
        base = f"{prefix}/{node_id}"
        super().__init__(
            f"mqtt://{host}:{port}/{base}",
            hello_timeout_s=hello_timeout_s,
            node_config=node_config,
            hub=hub,
        )
        self.host, self.port = host, port
        self.t_up, self.t_cmd, self.t_status = f"{base}/up", f"{base}/cmd", f"{base}/status"
        self.node_online = False  # from the retained status topic
        self._client: mqtt.Client | None = None

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        c = mqtt.Client(CallbackAPIVersion.VERSION2)
        # paho calls back on its network thread: hop onto the event loop for all state changes

        def on_connect(_c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            loop.call_soon_threadsafe(self._on_connect, rc)

        def on_disconnect(*_a: Any) -> None:
            loop.call_soon_threadsafe(self._on_disconnect)

        def on_message(_c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
            loop.call_soon_threadsafe(self._on_message, m.topic, bytes(m.payload))

        c.on_connect = on_connect
        c.on_disconnect = on_disconnect
        c.on_message = on_message
        c.reconnect_delay_set(min_delay=1, max_delay=5)
        self._client = c
        c.connect_async(self.host, self.port, keepalive=30)
        c.loop_start()
        await asyncio.Event().wait()  # runs until close() cancels it

    def _on_connect(self, rc: Any) -> None:
        if getattr(rc, "is_failure", False):
            self.last_error = f"broker refused: {rc}"
            return
        assert self._client is not None
        self._client.subscribe([(self.t_up, 1), (self.t_status, 1)])
        self.connected.set()
        self._write(encode_command(self._new_id(), "hello"))

    def _on_disconnect(self) -> None:
        if self.connected.is_set():
            self.stats["reconnects"] += 1
        self.connected.clear()
        self.last_error = "broker connection lost"

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == self.t_status:
            self.node_online = payload == b"online"
            if not self.node_online:
                self.last_error = "node offline (Last Will)"
                log.warning("node %s is offline (Last Will)", self.node_id or self.port_pattern)
            return
        self._handle_line(payload)

    def _write(self, line: bytes) -> None:
        c = self._client
        if c is None or not self.connected.is_set():
            return
        c.publish(self.t_cmd, line.rstrip(b"\n"), qos=1)

    def _disconnect(self) -> None:
        c = self._client
        self._client = None
        self.connected.clear()
        if c is None:
            return
        with contextlib.suppress(Exception):
            c.disconnect()
        c.loop_stop()
