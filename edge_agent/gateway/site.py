"""The gateway's subscription on the site broker: persistent session, QoS 1, manual acks.

paho acknowledges nothing by itself (``manual_ack=True``): the gateway acks a message only
after its decision is committed, so a crash before that makes the broker re-deliver it.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.errors import ConfigError
from edge_agent.gateway.routing import subscriptions
from edge_agent.uplink.mqtt import one_wakeup
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


def make_client(
    settings: MqttSettings, *, client_id: str, manual_ack: bool = False, persistent: bool = False
) -> mqtt.Client:
    """A paho 2 client configured from MqttSettings (protocol, TLS, credentials, backoff)."""
    v311 = settings.protocol == "3.1.1"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311 if v311 else mqtt.MQTTv5,
        clean_session=(not persistent) if v311 else None,
        manual_ack=manual_ack,
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    tls = settings.tls
    if tls.enabled:
        try:
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigError(
                f"TLS set-up failed: {exc}", key_path="gateway.site_mqtt.tls"
            ) from None
        client.tls_insecure_set(tls.insecure_skip_verify)
    client.max_inflight_messages_set(settings.max_inflight)
    client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)  # type: ignore[arg-type]
    return client


class SiteSubscriber:
    """Receives station events and evidence into ``inbox``; acks on request."""

    def __init__(self, settings: MqttSettings, *, session_expiry_s: int) -> None:
        self._settings = settings
        self._session_expiry_s = session_expiry_s
        # SimpleQueue: one C-level lock per put/get instead of queue.Queue's Python conditions.
        self.inbox: queue.SimpleQueue[SiteMessage] = queue.SimpleQueue()
        self.generation = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # set once the broker granted the subscriptions
        # A persistent session needs a stable client id.
        client_id = settings.client_id or f"battrace-gateway-{socket.gethostname()}"[:64]
        self._client = make_client(settings, client_id=client_id, manual_ack=True, persistent=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_: self.subscribed.set()

    def start(self) -> None:
        """Connect in the background; paho's loop thread reconnects after failures."""
        props = None
        clean_start: Any = mqtt.MQTT_CLEAN_START_FIRST_ONLY
        if self._settings.protocol != "3.1.1":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self._session_expiry_s
            clean_start = False
        self._client.connect_async(
            self._settings.host,
            self._settings.port,
            keepalive=self._settings.keepalive_s,
            clean_start=clean_start,
            properties=props,
        )
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect (the broker keeps the session and unacknowledged messages)."""
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, messages: list[SiteMessage]) -> None:
        """Acknowledge messages received on the current connection (older mids are void)."""
        with one_wakeup(self._client):
            for m in messages:
                if m.qos and m.generation == self.generation:
                    self._client.ack(m.mid, m.qos)

    def publish(self, topic: str, payload: bytes) -> None:
        """Fire-and-forget publish on the site broker (QoS 0), e.g. the quarantine topic."""
        self._client.publish(topic, payload, qos=0)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("site broker refused the connection: %s", reason)
            return
        self.generation += 1
        client.subscribe([(t, 1) for t in subscriptions(self._settings.topic_prefix)])
        self.connected.set()
        log.info("connected to site broker %s:%s", self._settings.host, self._settings.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        log.warning("disconnected from site broker: %s", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.inbox.put(
            SiteMessage(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self.generation)
        )
