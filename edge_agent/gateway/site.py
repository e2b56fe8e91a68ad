"""The gateway's subscription on the site broker: persistent session, QoS 1, manual acks.

paho acknowledges nothing by itself (``manual_ack=True``): the gateway acks a message only
after its decision is committed, so a crash before that makes the broker re-deliver it.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.gateway.routing import subscriptions
from edge_agent.uplink.mqtt import one_wakeup
from edge_agent.uplink.mqtt_client import (
    CONNACK_TIMEOUT_S,
    MQTT5,
    MQTT311,
    connack_overdue,
    connect_async,
    falls_back,
    first_protocol,
    make_client,
    protocol_name,
)
from edge_agent.uplink.settings import MqttSettings

log = logging.getLogger("edge_agent.gateway.site")


@dataclass(frozen=True, slots=True)
class SiteMessage:
    """One message received from the site broker, not yet acknowledged."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # connection counter: a mid is only valid on the connection that got it


class SiteSubscriber:
    """Receives station events and evidence into ``inbox``; acks on request."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        session_expiry_s: int,
        config_key: str = "gateway.site_mqtt",
        topics: list[str] | None = None,
    ) -> None:
        self._settings = settings
        # the ingest reuses this subscriber with its own (shared) subscriptions
        self._topics = topics or subscriptions(settings.topic_prefix)
        self._session_expiry_s = session_expiry_s
        self._config_key = config_key
        # SimpleQueue: one C-level lock per put/get instead of queue.Queue's Python conditions.
        self.inbox: queue.SimpleQueue[SiteMessage] = queue.SimpleQueue()
        self.generation = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # set once the broker granted the subscriptions
        # A persistent session needs a stable client id.
        self._client_id = settings.client_id or f"battrace-gateway-{socket.gethostname()}"[:64]
        self._protocol = first_protocol(settings)
        self._lock = threading.Lock()  # start/stop against the 3.1.1 fallback
        self._stopping = False
        self._fallback: threading.Thread | None = None
        self._connack_timer: threading.Timer | None = None
        self._client = self._make_client()

    @property
    def protocol(self) -> str:
        """Protocol in use: "5" or "3.1.1"."""
        return protocol_name(self._protocol)

    def _make_client(self) -> mqtt.Client:
        client = make_client(
            self._settings,
            client_id=self._client_id,
            config_key=self._config_key,
            protocol=self._protocol,
            session_expiry_s=self._session_expiry_s,
            manual_ack=True,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = lambda *_: self.subscribed.set()
        return client

    def start(self) -> None:
        """Connect in the background; paho's loop thread reconnects after failures."""
        with self._lock:
            self._stopping = False
            self._connect()

    def _connect(self) -> None:
        connect_async(self._client, self._settings, session_expiry_s=self._session_expiry_s)
        self._client.loop_start()
        if self._settings.protocol == "auto" and self._protocol == MQTT5:
            self._arm_connack_timer(self._client)

    def _arm_connack_timer(self, client: mqtt.Client) -> None:
        # some 3.1.1-only brokers (amqtt) never answer an MQTT 5 CONNECT with properties
        timer = threading.Timer(CONNACK_TIMEOUT_S, self._no_connack, args=(client,))
        timer.name = "edge-agent-site-connack-timer"
        timer.daemon = True
        self._connack_timer = timer
        timer.start()

    def _no_connack(self, client: mqtt.Client) -> None:
        if self.generation or self._stopping or client is not self._client:
            return  # it connected once: a later silence is a network problem, not the protocol
        if not connack_overdue(client):  # broker not reachable yet: look again later
            with self._lock:
                if not self._stopping:
                    self._arm_connack_timer(client)
            return
        log.warning("no CONNACK to an MQTT 5 CONNECT within %g s", CONNACK_TIMEOUT_S)
        self._fall_back(client)

    def _fall_back(self, client: mqtt.Client) -> None:
        with self._lock:
            if not self._stopping and self._fallback is None:
                self._fallback = threading.Thread(
                    target=self._switch_to_311,
                    args=(client,),
                    name="edge-agent-site-fallback",
                    daemon=True,
                )
                self._fallback.start()

    def stop(self) -> None:
        """Disconnect (the broker keeps the session and unacknowledged messages)."""
        with self._lock:
            self._stopping = True
            fallback, self._fallback = self._fallback, None
            if self._connack_timer is not None:
                self._connack_timer.cancel()
        if fallback is not None:
            fallback.join()
        self._client.disconnect()
        self._client.loop_stop()

    def _switch_to_311(self, old: mqtt.Client) -> None:
        # runs on its own thread: loop_stop() joins paho's loop thread, so not from a callback
        old.disconnect()
        old.loop_stop()
        with self._lock:
            if self._stopping:
                return
            log.warning("site broker %s: falling back to MQTT 3.1.1", self._settings.host)
            self._protocol = MQTT311
            self._client = self._make_client()
            self._connect()

    def ack(self, messages: list[SiteMessage]) -> None:
        """Acknowledge messages received on the current connection (older mids are void)."""
        with one_wakeup(self._client):
            for m in messages:
                if m.qos and m.generation == self.generation:
                    self._client.ack(m.mid, m.qos)

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        """Publish on the site broker (QoS 0 by default, e.g. the quarantine topic)."""
        self._client.publish(topic, payload, qos=qos)

    def _on_connect(
        self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            log.warning("site broker refused the connection: %s", reason)
            if falls_back(self._settings, self._protocol, reason):
                self._fall_back(client)
            return
        self.generation += 1
        client.subscribe([(t, 1) for t in self._topics])
        self.connected.set()
        log.info("connected to site broker %s:%s", self._settings.host, self._settings.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        log.warning("disconnected from site broker: %s", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.inbox.put(
            SiteMessage(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self.generation)
        )
