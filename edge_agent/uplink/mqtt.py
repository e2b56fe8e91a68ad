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
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.errors import ConfigError, PublishError
from edge_agent.uplink.settings import MqttSettings

log = logging.getLogger("edge_agent.uplink.mqtt")

CONNACK_TIMEOUT_S = 5.0
_PROTOCOLS = {"5": paho.MQTTv5, "3.1.1": paho.MQTTv311}
# CONNACK answers that mean "this broker does not speak MQTT 5" (3.1.1 code 1 and v5 0x84).
_UNSUPPORTED_PROTOCOL = {"Unsupported protocol version"}


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
    ) -> None:
        """``subscriptions`` (QoS 1) are renewed on every connect and delivered to
        ``on_message(topic, payload, retain)`` on paho's thread; the PUBACK goes out only after
        it returns, and if it raises the link reconnects so the broker delivers the message
        again (make it store durably; quarantine bad input instead of raising).
        ``session_expiry_s > 0`` asks the broker to keep the session while we are away."""
        if not client_id:
            raise ConfigError("MQTT client id must not be empty", key_path="mqtt.client_id")
        self.settings = settings
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
        self._protocol = paho.MQTTv5 if settings.protocol in ("auto", "5") else paho.MQTTv311
        self._fallback = threading.Event()
        self._client = self._make_client()
        self.reconnects = 0

    # --- set-up --------------------------------------------------------------------------------

    @property
    def protocol(self) -> str:
        """Protocol in use: "5" or "3.1.1"."""
        return "5" if self._protocol == paho.MQTTv5 else "3.1.1"

    @property
    def connected(self) -> bool:
        """True between CONNACK and the next disconnect."""
        return self._connected.is_set()

    def _make_client(self) -> paho.Client:
        s = self.settings
        v5 = self._protocol == paho.MQTTv5
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=self._protocol,
            clean_session=None if v5 else self._session_expiry_s == 0,
            # with a handler we PUBACK only after it returned (it stores the message first)
            manual_ack=self._on_message_handler is not None,
        )
        client.max_inflight_messages_set(s.max_inflight)
        client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)  # type: ignore[arg-type]
        if s.username:
            client.username_pw_set(s.username, s.password or None)
        if s.tls.enabled:
            self._set_tls(client)
        if self.status is not None:
            client.will_set(self.status.topic, self.status.offline, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _set_tls(self, client: paho.Client) -> None:
        tls = self.settings.tls
        for name, path in (
            ("ca_file", tls.ca_file),
            ("cert_file", tls.cert_file),
            ("key_file", tls.key_file),
        ):
            if path is not None and not path.is_file():
                raise ConfigError(f"file not found: {path}", key_path=f"uplink.mqtt.tls.{name}")
        if (tls.cert_file is None) != (tls.key_file is None):
            raise ConfigError("cert_file and key_file go together", key_path="uplink.mqtt.tls")
        try:
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                cert_reqs=ssl.CERT_NONE if tls.insecure_skip_verify else ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigError(f"TLS set-up failed: {exc}", key_path="uplink.mqtt.tls") from exc
        if tls.insecure_skip_verify:
            client.tls_insecure_set(True)

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
        kwargs: dict[str, Any] = {}
        if self._protocol == paho.MQTTv5:
            kwargs["clean_start"] = self._session_expiry_s == 0
            if self._session_expiry_s:
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = self._session_expiry_s
                kwargs["properties"] = props
        self._client.connect_async(
            self.settings.host, self.settings.port, self.settings.keepalive_s, **kwargs
        )
        if self.settings.protocol == "auto" and self._protocol == paho.MQTTv5:
            # some 3.1.1-only brokers (amqtt) never answer an MQTT 5 CONNECT that has a Will
            timer = threading.Timer(CONNACK_TIMEOUT_S, self._no_connack, args=(self._client,))
            timer.daemon = True
            timer.start()

    def _no_connack(self, client: paho.Client) -> None:
        if self._connected.is_set() or self._stopping.is_set() or client is not self._client:
            return
        if self._protocol != paho.MQTTv5 or self.reconnects:
            return
        log.warning("no CONNACK to an MQTT 5 CONNECT within %g s", CONNACK_TIMEOUT_S)
        self._fallback.set()
        client.disconnect()

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
            self._stopping.wait(self.settings.reconnect_min_s)
            if not self._stopping.is_set():
                try:
                    self._connect_async()
                except (OSError, ValueError) as exc:
                    log.warning("MQTT reconnect set-up failed: %s", exc)

    def _switch_to_311(self) -> None:
        log.warning("broker %s refused MQTT 5; falling back to 3.1.1", self.settings.host)
        self._protocol = paho.MQTTv311
        self._client = self._make_client()
        self._emit(LinkEvent("reset"))
        self._connect_async()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish the offline status (a clean disconnect sends no Will), disconnect, join."""
        self._stopping.set()
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
        self._client.disconnect()
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
                log.warning("broker refused connection: %s", rc.getName())
                if (
                    self.settings.protocol == "auto"
                    and self._protocol == paho.MQTTv5
                    and (rc.getName() in _UNSUPPORTED_PROTOCOL or rc.value == 1)
                ):
                    self._fallback.set()
                    client.disconnect()
                return
            log.info(
                "connected to %s:%d (MQTT %s)",
                self.settings.host,
                self.settings.port,
                self.protocol,
            )
            self._connected.set()
            self._subscribed.clear()
            if self._subscriptions:
                client.subscribe([(topic, 1) for topic in self._subscriptions])
            if self.status is not None:
                client.publish(self.status.topic, self.status.online, qos=1, retain=True)
            self._emit(LinkEvent("connected"))
        except Exception:
            log.exception("on_connect handler failed")

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        log.debug("connection to %s:%d failed", self.settings.host, self.settings.port)

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
