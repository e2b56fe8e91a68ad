"""paho-mqtt 2.x connection: MQTT 5 with 3.1.1 fallback, TLS, Last Will + retained birth.

Pitfalls handled (reference/edge-anchors.md section c): VERSION2 callbacks with reason codes
compared by ``is_failure``/name; callbacks never raise into paho's loop (they only hand events
to a sink); our own loop thread restarts ``loop_forever`` if it ever raises; ``publish`` while
disconnected is treated as queued (paho re-sends it on reconnect); we never call
``wait_for_publish`` without a running loop and always re-check ``is_published``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.errors import EdgeAgentError, PublishError
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

log = logging.getLogger("edge_agent.uplink.mqtt")


@dataclass(frozen=True, slots=True)
class StatusMessages:
    """Retained status topic: ``online`` is published on every connect, ``offline`` is the Will."""

    topic: str
    online: bytes
    offline: bytes


def status_messages(topic: str, client_id: str) -> StatusMessages:
    """JSON birth/offline payloads for ``topic``."""

    def body(state: str) -> bytes:
        return json.dumps({"state": state, "client_id": client_id}, sort_keys=True).encode()

    return StatusMessages(topic=topic, online=body("online"), offline=body("offline"))


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """What happened on the connection: ack/connected/disconnected/reset."""

    kind: str  # "ack" | "connected" | "disconnected" | "reset"
    mid: int = 0
    failure: str = ""  # reason-code name when the broker refused (ack) or dropped us


Sink = Callable[[LinkEvent], None]
MessageHandler = Callable[[str, bytes, bool], None]


def default_client_id(prefix: str = "edge-agent") -> str:
    """A client id unique per host."""
    return f"{prefix}-{socket.gethostname()}"[:64]


class MqttLink:
    """One broker connection with its own network-loop thread and reconnect back-off."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        client_id: str,
        sink: Sink,
        status: StatusMessages | None = None,
        subscriptions: Sequence[str] = (),
        on_message: MessageHandler | None = None,
        session_expiry_s: int = 0,
        config_key: str = "uplink.mqtt",
    ) -> None:
        """``subscriptions`` (QoS 1) are renewed on every connect and delivered to
        ``on_message(topic, payload, retain)`` on paho's thread; the PUBACK goes out only after
        it returns, and if it raises the link reconnects so the broker delivers the message
        again (make it store durably; quarantine bad input instead of raising).
        ``session_expiry_s > 0`` asks the broker to keep the session while we are away;
        ``config_key`` names the settings' section in configuration errors."""
        self.settings = settings
        self.config_key = config_key
        self.client_id = client_id
        self.status = status
        self._sink = sink
        self._subscriptions = list(subscriptions)
        self._on_message_handler = on_message
        self._session_expiry_s = session_expiry_s
        self._subscribed = threading.Event()
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._protocol = first_protocol(settings)
        self._fallback = threading.Event()  # the broker answered "unsupported protocol version"
        self._unanswered = threading.Event()  # an MQTT 5 CONNECT got no CONNACK in time
        self.watch = ConnectWatch(
            f"{settings.host}:{settings.port}",
            log,
            on_overdue=self._no_connack,
            timer_name="edge-agent-connack-timer",
        )
        self._client = self._make_client()
        self.reconnects = 0

    # --- set-up --------------------------------------------------------------------------------

    @property
    def protocol(self) -> str:
        """Protocol in use: "5" or "3.1.1"."""
        return protocol_name(self._protocol)

    @property
    def connected(self) -> bool:
        """True between CONNACK and the next disconnect."""
        return self._connected.is_set()

    def _make_client(self) -> paho.Client:
        client = make_client(
            self.settings,
            client_id=self.client_id,
            config_key=self.config_key,
            protocol=self._protocol,
            session_expiry_s=self._session_expiry_s,
            # with a handler we PUBACK only after it returned (it stores the message first)
            manual_ack=self._on_message_handler is not None,
        )
        if self.status is not None:
            client.will_set(self.status.topic, self.status.offline, qos=1, retain=True)
        client.on_connect = self._on_connect
        self.watch.attach(client)
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; reconnects forever with back-off until ``stop``."""
        if self._thread is not None:
            return
        self._connect_async()
        self._thread = threading.Thread(
            target=self._run, name=f"edge-agent-mqtt-{self.client_id}", daemon=True
        )
        self._thread.start()

    def _connect_async(self) -> None:
        connect_async(self._client, self.settings, session_expiry_s=self._session_expiry_s)

    def _no_connack(self, client: paho.Client) -> None:
        # watch timer thread: let our loop thread ask the broker with a plain CONNECT (amqtt
        # leaves an MQTT 5 CONNECT with a Will or properties unanswered, Mosquitto may be slow)
        if self._stopping.is_set() or client is not self._client:
            return
        if self.settings.protocol == "auto" and self._protocol == MQTT5:
            self._unanswered.set()
            client.disconnect()
        else:  # paho gives up on the silent connection after keepalive_s and retries
            self.watch.no_connack("waiting for keepalive_s, then retrying")

    def _run(self) -> None:
        while not self._stopping.is_set():
            # paho writes packets from the publishing thread unless it believes its own loop
            # thread runs; mark ours so the drainer only queues and this thread sends (2-3x
            # throughput, and no socket writes racing the loop)
            self._client._thread = threading.current_thread()
            # loop() creates the wake-up socket pair that loop_forever() alone never makes;
            # without it a queued publish waits for the next incoming packet
            self._client.loop(0.0)
            try:
                self._client.loop_forever(retry_first_connection=True)
            except Exception:  # a bug in paho or in a callback must not end the uplink (paho#636)
                log.exception("MQTT network loop crashed; restarting it")
                self._connected.clear()
            if self._stopping.is_set():
                break
            if self._fallback.is_set():
                self._fallback.clear()
                self._switch_to_311()
                continue
            if self._unanswered.is_set():
                self._unanswered.clear()
                if refuses_mqtt5(
                    self.settings, client_id=self.client_id, config_key=self.config_key
                ):
                    self._switch_to_311()
                    continue
                self.watch.no_connack("a plain MQTT 5 CONNECT was not refused: retrying MQTT 5")
            self._stopping.wait(self.settings.reconnect_min_s)
            if not self._stopping.is_set():
                try:
                    self._connect_async()
                except (OSError, ValueError) as exc:
                    log.warning("MQTT reconnect set-up failed: %s", exc)

    def _switch_to_311(self) -> None:
        log.warning(
            "broker %s answered MQTT 5 with 'Unsupported protocol version'; using MQTT 3.1.1",
            self.watch.where,
        )
        self._protocol = MQTT311
        self._client = self._make_client()
        self._emit(LinkEvent("reset"))
        self._connect_async()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish the offline status (a clean disconnect sends no Will), disconnect, join."""
        self._stopping.set()
        self.watch.stop()
        if self.connected and self.status is not None:
            try:
                info = self._client.publish(
                    self.status.topic, self.status.offline, qos=1, retain=True
                )
                # the loop thread is running, so waiting is safe; re-check after the timeout
                info.wait_for_publish(timeout=min(timeout, 2.0))
                if not info.is_published():
                    log.warning("offline status not acknowledged before disconnect")
            except (RuntimeError, ValueError) as exc:
                log.warning("offline status not sent: %s", exc)
        client = self._client
        client.disconnect()
        # disconnect() only marks the state; when it lands while paho's loop is inside
        # reconnect() (the broker dropped us a moment ago), reconnect() overwrites that mark
        # and loop_forever waits out the reconnect back-off (up to retry_max_s) before it
        # looks again. The terminate flag is checked at every step of that loop and of its
        # back-off sleep (at least once a second), so the thread ends promptly either way.
        client._thread_terminate = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("MQTT loop thread did not stop within %.1f s", timeout)
            self._thread = None
        self._connected.clear()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (True) or timeout (False)."""
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until the broker acknowledged our subscriptions on this connection."""
        return self._subscribed.wait(timeout)

    # --- publishing ----------------------------------------------------------------------------

    def burst(self) -> contextlib.AbstractContextManager[None]:
        """Context for several ``publish`` calls in a row: one wake-up of the loop thread."""
        return one_wakeup(self._client)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Queue a QoS 1 publish and return its mid; PublishError if paho refused it."""
        try:
            info = self._client.publish(topic, payload, qos=1, retain=retain)
        except ValueError as exc:  # queue full, bad topic, payload too large
            raise PublishError(f"publish to {topic!r} refused by client: {exc}") from exc
        # NO_CONN: paho keeps QoS>0 messages queued and sends them after reconnect
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise PublishError(f"publish to {topic!r} failed: {paho.error_string(info.rc)}")
        return info.mid

    # --- paho callbacks (paho's thread; never raise) -------------------------------------------

    def _emit(self, event: LinkEvent) -> None:
        try:
            self._sink(event)
        except Exception:
            log.exception("uplink event sink failed for %s", event.kind)

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        try:
            if rc.is_failure:
                self.watch.answered(accepted=False)
                log.warning("broker %s refused the connection: %s", self.watch.where, rc.getName())
                if falls_back(self.settings, self._protocol, rc):
                    self._fallback.set()
                    client.disconnect()
                return
            log.info(
                "connected to %s:%d (MQTT %s)",
                self.settings.host,
                self.settings.port,
                self.protocol,
            )
            self.watch.answered(accepted=True)
            self._connected.set()
            self._subscribed.clear()
            if self._subscriptions:
                client.subscribe([(topic, 1) for topic in self._subscriptions])
            if self.status is not None:
                client.publish(self.status.topic, self.status.online, qos=1, retain=True)
            self._emit(LinkEvent("connected"))
        except Exception:
            log.exception("on_connect handler failed")

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        try:
            was = self._connected.is_set()
            self._connected.clear()
            if was and self._stopping.is_set():
                log.info("disconnected from broker: %s", rc.getName())
            elif was:
                self.reconnects += 1
                log.warning("disconnected from broker: %s", rc.getName())
                self._emit(LinkEvent("disconnected", failure=rc.getName()))
            elif not (self._stopping.is_set() or self._unanswered.is_set()):
                self.watch.closed_before_connack(rc.getName())
        except Exception:
            log.exception("on_disconnect handler failed")

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any
    ) -> None:
        # may run before publish() returns (paho#482): only hand the mid on, never look it up here
        try:
            self._emit(LinkEvent("ack", mid=mid, failure=rc.getName() if rc.is_failure else ""))
        except Exception:
            log.exception("on_publish handler failed")

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, codes: list[ReasonCode], props: Any
    ) -> None:
        failed = [c.getName() for c in codes if c.is_failure]
        if failed:
            log.error("broker refused subscriptions %s: %s", self._subscriptions, failed)
        else:
            self._subscribed.set()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if self._on_message_handler is None:
            return
        try:
            self._on_message_handler(msg.topic, bytes(msg.payload), bool(msg.retain))
        except EdgeAgentError as exc:  # a known condition (e.g. the key's token is away): one line
            log.error(
                "message on topic %r not handled (%s); reconnecting for redelivery", msg.topic, exc
            )
            client.disconnect()
            return
        except Exception:  # never into paho's loop; no PUBACK, so the broker sends it again
            log.exception(
                "message handler failed for topic %r; reconnecting for redelivery", msg.topic
            )
            client.disconnect()  # our loop thread reconnects; the session redelivers unacked
            return
        if msg.qos > 0:
            client.ack(msg.mid, msg.qos)


@contextlib.contextmanager
def one_wakeup(client: paho.Client) -> Iterator[None]:
    """Queue a burst of packets from another thread with one wake-up of paho's loop thread."""
    # paho writes a byte to its socket pair for every packet queued from another thread, so
    # its loop thread leaves select() once per packet; one byte after the burst does the same
    # (the loop then writes everything queued) at a fraction of the syscalls and wake-ups.
    wake = client._sockpairW
    if wake is None:
        yield
        return
    client._sockpairW = None
    try:
        yield
    finally:
        client._sockpairW = wake
        with contextlib.suppress(OSError):
            wake.send(b"0")


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    """Poll ``predicate`` until true or timeout (for tests and the CLI)."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(step)
    return True
