"""The gateway's subscription on the site broker: persistent session, QoS 1, manual acks.

paho acknowledges nothing by itself (``manual_ack=True``): the gateway acks a message only
after its decision is committed, so a crash before that makes the broker re-deliver it.

On stop the acks already queued must reach the broker before the connection closes: paho
writes them before the DISCONNECT, but closing a socket with unread input (the broker keeps
sending) resets the connection, and the broker may drop what it had not read yet. So ``stop``
first sends a PINGREQ and waits for the PINGRESP: the broker answers packets in order, so by
then it has handled every ack sent before it.
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
from edge_agent.uplink.mqtt_buffered import BufferedClient
from edge_agent.uplink.mqtt_client import (
    MQTT5,
    MQTT311,
    ConnectWatch,
    connect_async,
    falls_back,
    first_protocol,
    make_client,
    protocol_name,
    refuses_mqtt5,
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
        self._pongs = 0  # PINGRESPs received (the ack barrier on stop)
        self._pong = threading.Condition()
        self.watch = ConnectWatch(
            f"site broker {settings.host}:{settings.port}",
            log,
            on_overdue=self._no_connack,
            timer_name="edge-agent-site-connack-timer",
        )
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
        self.watch.attach(client)
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = lambda *_: self.subscribed.set()
        # paho has no PINGRESP callback: count them around its own handler (loop thread)
        handle_pingresp = client._handle_pingresp

        def counted_pingresp() -> Any:
            rc = handle_pingresp()
            with self._pong:
                self._pongs += 1
                self._pong.notify_all()
            return rc

        client._handle_pingresp = counted_pingresp  # type: ignore[method-assign]
        return client

    def start(self) -> None:
        """Connect in the background; paho's loop thread reconnects after failures."""
        with self._lock:
            self._stopping = False
            self._connect()

    def _connect(self) -> None:
        connect_async(self._client, self._settings, session_expiry_s=self._session_expiry_s)
        self._client.loop_start()

    def _no_connack(self, client: mqtt.Client) -> None:
        # amqtt never answers an MQTT 5 CONNECT with properties: ask with a plain one (on the
        # fallback thread); fixed protocols wait for paho's keepalive to retry
        if self._settings.protocol == "auto" and self._protocol == MQTT5:
            self._replace_later(client, check=True)
        else:  # paho gives up on the silent connection after keepalive_s and retries
            self.watch.no_connack("waiting for keepalive_s, then retrying")

    def _replace_later(self, client: mqtt.Client, *, check: bool) -> None:
        with self._lock:
            if not self._stopping and self._fallback is None and client is self._client:
                self._fallback = threading.Thread(
                    target=self._replace,
                    args=(client, check),
                    name="edge-agent-site-fallback",
                    daemon=True,
                )
                self._fallback.start()

    def stop(self, ack_timeout_s: float = 5.0) -> None:
        """Make sure the queued acks were handled, then disconnect (the broker keeps the
        session and the unacknowledged messages)."""
        if self.connected.is_set() and not self.acks_handled(ack_timeout_s):
            log.warning("site broker did not confirm the last acks within %g s", ack_timeout_s)
        with self._lock:
            self._stopping = True
            fallback, self._fallback = self._fallback, None
        self.watch.stop()
        if fallback is not None:
            fallback.join()
        self._client.disconnect()
        self._client.loop_stop()

    def _replace(self, old: mqtt.Client, check: bool) -> None:
        # runs on its own thread: loop_stop() joins paho's loop thread, so not from a callback.
        # ``check``: the CONNECT went unanswered; only a plain CONNECT answered "unsupported
        # protocol version" switches to 3.1.1, anything else retries MQTT 5.
        old.disconnect()
        old.loop_stop()
        use_311 = not check or refuses_mqtt5(
            self._settings, client_id=self._client_id, config_key=self._config_key
        )
        with self._lock:
            self._fallback = None
            if self._stopping:
                return
            if use_311:
                log.warning(
                    "%s answered MQTT 5 with 'Unsupported protocol version'; using MQTT 3.1.1",
                    self.watch.where,
                )
                self._protocol = MQTT311
            else:
                self.watch.no_connack("a plain MQTT 5 CONNECT was not refused: retrying MQTT 5")
            self._client = self._make_client()
            self._connect()

    def ack(self, messages: list[SiteMessage]) -> None:
        """Acknowledge messages received on the current connection (older mids are void)."""
        current = [(m.mid, m.qos) for m in messages if m.qos and m.generation == self.generation]
        with one_wakeup(self._client):
            if isinstance(self._client, BufferedClient):  # one write for the batch
                self._client.ack_batch(current)
            else:
                for mid, qos in current:
                    self._client.ack(mid, qos)

    def acks_handled(self, timeout: float) -> bool:
        """Round trip (PINGREQ -> PINGRESP): True once the broker handled every ack sent so far."""
        with self._pong:
            before = self._pongs
        if self._client._send_pingreq() != mqtt.MQTT_ERR_SUCCESS:
            return False
        with self._pong:
            return self._pong.wait_for(lambda: self._pongs > before, timeout)

    def publish(self, topic: str, payload: bytes, *, qos: int = 0) -> None:
        """Publish on the site broker: QoS 0 for the quarantine copy, QoS 1 for receipts."""
        self._client.publish(topic, payload, qos=qos)

    def _on_connect(
        self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            self.watch.answered(accepted=False)
            log.warning("%s refused the connection: %s", self.watch.where, reason)
            if falls_back(self._settings, self._protocol, reason):
                self._replace_later(client, check=False)
            return
        self.watch.answered(accepted=True)
        self.generation += 1
        client.subscribe([(t, 1) for t in self._topics])
        self.connected.set()
        log.info("connected to site broker %s:%s", self._settings.host, self._settings.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not self.connected.is_set():
            if not self._stopping and self._fallback is None:
                self.watch.closed_before_connack(reason)
            return
        self.connected.clear()
        log.warning("disconnected from site broker: %s", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.inbox.put(
            SiteMessage(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self.generation)
        )
