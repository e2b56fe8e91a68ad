"""The one MQTT client factory: every paho client of the agent is built here.

Used by the station uplink (``MqttLink``), both sides of the site gateway (site subscriber and
upstream publisher) and the self-test's broker probe, so TLS files, credentials, protocol
choice and ``insecure_skip_verify`` mean the same everywhere:

- TLS: ca/cert/key files must exist (ConfigError naming the file and its config key);
  ``insecure_skip_verify`` turns off both certificate and hostname verification (CERT_NONE).
- protocol ``"5"`` and ``"3.1.1"`` are fixed; ``"auto"`` starts with MQTT 5 and falls back to
  3.1.1 only when the broker answers an MQTT 5 CONNECT with "unsupported protocol version"
  (``falls_back``: MQTT 5 reason 0x84, or return code 1 of a 3.1.1 broker such as Mosquitto
  1.x, Mosquitto 2.1 with ``accept_protocol_versions 3,4``, amqtt). A refused connection, a
  timeout or a TLS failure is no such answer: it is logged as what it is
  (``describe_connect_error``) and retried as MQTT 5. A CONNECT left unanswered for
  ``CONNACK_TIMEOUT_S`` (amqtt does so when it carries a Will or properties) is checked with a
  plain MQTT 5 CONNECT (``refuses_mqtt5``), and only that broker's answer decides.
- ``session_expiry_s > 0`` asks for a persistent session (MQTT 5 session expiry, 3.1.1
  ``clean_session=False``).
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.errors import ConfigError
from edge_agent.uplink.mqtt_buffered import BufferedClient
from edge_agent.uplink.settings import MqttSettings, TlsSettings

log = logging.getLogger(__name__)
_JITTER = random.Random()  # not for secrets: only spreads reconnect instants
MQTT5 = MQTTProtocolVersion.MQTTv5
MQTT311 = MQTTProtocolVersion.MQTTv311
CONNACK_TIMEOUT_S = 5.0
# CONNACK answers that mean "this broker does not speak MQTT 5" (3.1.1 code 1 and v5 0x84).
_UNSUPPORTED_PROTOCOL = {"Unsupported protocol version"}


def first_protocol(settings: MqttSettings) -> MQTTProtocolVersion:
    """The protocol of the first CONNECT: 3.1.1 only when configured, else MQTT 5."""
    return MQTT311 if settings.protocol == "3.1.1" else MQTT5


def protocol_name(protocol: MQTTProtocolVersion) -> str:
    """ "5" or "3.1.1"."""
    return "5" if protocol == MQTT5 else "3.1.1"


def falls_back(settings: MqttSettings, protocol: MQTTProtocolVersion, reason: ReasonCode) -> bool:
    """True when an ``auto`` connection's MQTT 5 CONNECT was refused as unsupported."""
    return (
        settings.protocol == "auto"
        and protocol == MQTT5
        and reason.is_failure
        and (reason.getName() in _UNSUPPORTED_PROTOCOL or reason.value == 1)
    )


def tls_problem(exc: ssl.SSLError) -> str:
    """What went wrong in a TLS handshake, e.g. "certificate verify failed: self-signed
    certificate", "... Hostname mismatch, ..." or "... certificate has expired"."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    text = str(getattr(exc, "reason", None) or exc.strerror or exc)
    return text.replace("_", " ").lower() if text.isupper() else text


def describe_connect_error(exc: BaseException | None, where: str) -> str:
    """One line saying what a failed connection attempt to ``where`` (host:port) was."""
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {where} failed: {tls_problem(exc)}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {where} refused (broker not running or wrong port)"
    if isinstance(exc, TimeoutError):
        return f"TCP connection to {where} timed out"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the broker host of {where}: {exc.strerror or exc}"
    if isinstance(exc, OSError):
        return f"cannot reach {where}: {exc.strerror or exc}"
    if exc is None:
        return f"connection to {where} failed"
    return f"connection to {where} failed: {exc}"


class ConnectWatch:
    """One connection's attempts: logs what each failure was (WARNING when it changes, DEBUG
    when it repeats) and calls ``on_overdue(client)`` when a CONNECT stays unanswered for
    ``CONNACK_TIMEOUT_S``. ``attach`` it to every client the connection makes."""

    def __init__(
        self,
        where: str,
        logger: logging.Logger,
        *,
        on_overdue: Callable[[paho.Client], None],
        timer_name: str,
    ) -> None:
        self.where = where
        self._log = logger
        self._on_overdue = on_overdue
        self._timer_name = timer_name
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._attempt = 0
        self._answered = 0  # the last attempt that got a CONNACK
        self._stopped = False
        self._last = ""
        self.last_failure = ""  # what the latest failed attempt was ("" once connected)

    def attach(self, client: paho.Client) -> None:
        """Watch ``client``'s attempts (its ``on_pre_connect`` and ``on_connect_fail``)."""
        client.on_pre_connect = self._pre_connect
        client.on_connect_fail = self._connect_fail

    def _pre_connect(self, client: paho.Client, _userdata: Any) -> None:
        with self._lock:
            self._attempt += 1
            self._cancel()
            if not self._stopped:
                self._arm(client, self._attempt)

    def _arm(self, client: paho.Client, attempt: int) -> None:
        timer = threading.Timer(CONNACK_TIMEOUT_S, self._fire, args=(client, attempt))
        timer.name = self._timer_name
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self, client: paho.Client, attempt: int) -> None:
        with self._lock:
            if self._stopped or attempt != self._attempt or client.is_connected():
                return
            if client.socket() is None:  # still opening TCP/TLS (its failure is logged)
                self._arm(client, attempt)
                return
            self._timer = None
        self._on_overdue(client)  # it logs what it does about it (``no_connack``)

    def _connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        # paho calls this from its ``except OSError`` around the connect: the error is current
        exc = sys.exc_info()[1]
        with self._lock:
            self._cancel()
        self.failure(describe_connect_error(exc, self.where) + "; retrying")

    def closed_before_connack(self, reason: object) -> None:
        """The connection closed: logged when the broker had not answered the CONNECT."""
        with self._lock:
            self._cancel()
            if self._answered == self._attempt or self._stopped:
                return
        self.failure(f"{self.where} closed the connection before CONNACK ({reason}); retrying")

    def no_connack(self, then: str) -> None:
        """Log a CONNECT left unanswered and ``then``, what happens next."""
        self.failure(f"no CONNACK from {self.where} within {CONNACK_TIMEOUT_S:g} s; {then}")

    def failure(self, message: str) -> None:
        """Log one failed attempt (WARNING the first time in a row, DEBUG when repeated)."""
        self.last_failure = message
        if message != self._last:
            self._last = message
            self._log.warning("%s", message)
        else:
            self._log.debug("%s", message)

    def answered(self, accepted: bool) -> None:
        """A CONNACK came (``accepted``: the connection is up)."""
        with self._lock:
            self._cancel()
            self._answered = self._attempt
        if accepted:
            self._last = self.last_failure = ""

    def stop(self) -> None:
        """Cancel the timer; no more callbacks."""
        with self._lock:
            self._stopped = True
            self._cancel()


def reconnect_delays(
    settings: MqttSettings, rng: random.Random | None = None
) -> tuple[float, float]:
    """This client's (min, max) reconnect delay: each client draws its own within the configured
    range, so stations cut off by one outage do not all retry at the same instant.

    paho doubles the delay from min to max without jitter; a per-client min in [min, 2*min]
    and max in [max/2, max] spreads both the doubling phase and the capped phase.
    """
    draw = (rng or _JITTER).uniform
    low = settings.reconnect_min_s * draw(1.0, 2.0)
    high = max(low, settings.reconnect_max_s * draw(0.5, 1.0))
    return low, high


def check_tls_files(tls: TlsSettings, *, config_key: str) -> None:
    """ConfigError naming the first configured TLS file that does not exist."""
    for name, path in (
        ("ca_file", tls.ca_file),
        ("cert_file", tls.cert_file),
        ("key_file", tls.key_file),
    ):
        if path is not None and not path.is_file():
            raise ConfigError(f"file not found: {path}", key_path=f"{config_key}.tls.{name}")
    if (tls.cert_file is None) != (tls.key_file is None):
        raise ConfigError("cert_file and key_file go together", key_path=f"{config_key}.tls")


def make_client(
    settings: MqttSettings,
    *,
    client_id: str,
    config_key: str,
    protocol: MQTTProtocolVersion | None = None,
    session_expiry_s: int = 0,
    manual_ack: bool = False,
) -> paho.Client:
    """A paho 2 client configured from ``settings``; ``config_key`` names the section in errors.

    ``protocol`` overrides ``first_protocol(settings)`` (the 3.1.1 fallback of ``auto``).
    Callbacks are the caller's; connect with ``connect_async``.
    """
    if not client_id:
        raise ConfigError("MQTT client id must not be empty", key_path=f"{config_key}.client_id")
    protocol = first_protocol(settings) if protocol is None else protocol
    client = BufferedClient(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if protocol == MQTT5 else session_expiry_s == 0,
        manual_ack=manual_ack,
    )
    client.max_inflight_messages_set(settings.max_inflight)
    low, high = reconnect_delays(settings)
    client.reconnect_delay_set(low, high)  # type: ignore[arg-type]
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    if settings.tls.enabled:
        _set_tls(client, settings.tls, config_key=config_key)
    client.on_socket_open = _no_delay
    return client


def _no_delay(_client: paho.Client, _userdata: Any, sock: Any) -> None:
    # paho leaves Nagle on: an ack followed by a publish (a receipt answered, the next event
    # sent) would wait ~40 ms for the broker's delayed TCP ack.
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _set_tls(client: paho.Client, tls: TlsSettings, *, config_key: str) -> None:
    check_tls_files(tls, config_key=config_key)
    try:
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
            # insecure: no certificate check at all, not only no hostname check
            cert_reqs=ssl.CERT_NONE if tls.insecure_skip_verify else ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"TLS set-up failed: {exc}", key_path=f"{config_key}.tls") from exc
    client.tls_insecure_set(tls.insecure_skip_verify)
    if tls.insecure_skip_verify:
        log.warning(
            "%s.tls.insecure_skip_verify is on: the broker certificate is not checked",
            config_key,
            extra={"config_key": f"{config_key}.tls.insecure_skip_verify"},
        )


def connect_async(
    client: paho.Client, settings: MqttSettings, *, session_expiry_s: int = 0
) -> None:
    """Start connecting ``client`` (made by ``make_client``) in the background."""
    kwargs: dict[str, Any] = {}
    if client.protocol == MQTT5:
        kwargs["clean_start"] = session_expiry_s == 0
        if session_expiry_s:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = session_expiry_s
            kwargs["properties"] = props
    client.connect_async(settings.host, settings.port, settings.keepalive_s, **kwargs)


def connect_probe(
    settings: MqttSettings, *, timeout_s: float = 3.0, config_key: str = "uplink.mqtt"
) -> tuple[bool, str]:
    """(accepted, reason) of one CONNECT/CONNACK round trip, without a background thread.

    ``auto`` falls back to 3.1.1 like the long-lived connections. Raises ConfigError for bad
    TLS settings, ssl.SSLError for a failed handshake and OSError when the broker is unreachable.
    """
    client_id = f"{settings.client_id or 'edge-agent'}-selftest-{uuid.uuid4().hex[:8]}"
    protocol = first_protocol(settings)
    accepted, reason = _probe(settings, client_id, config_key, protocol, timeout_s)
    if isinstance(reason, ReasonCode) and falls_back(settings, protocol, reason):
        accepted, reason = _probe(settings, client_id, config_key, MQTT311, timeout_s)
    return accepted, str(reason)


def refuses_mqtt5(settings: MqttSettings, *, client_id: str, config_key: str) -> bool:
    """True when the broker answers a plain MQTT 5 CONNECT (no Will, no properties) with
    "unsupported protocol version"; False for any other answer or none."""
    probe_id = f"{client_id or 'edge-agent'}-probe-{uuid.uuid4().hex[:8]}"[:64]
    try:
        _, reason = _probe(settings, probe_id, config_key, MQTT5, min(CONNACK_TIMEOUT_S, 3.0))
    except (OSError, ConfigError):
        return False
    return isinstance(reason, ReasonCode) and falls_back(settings, MQTT5, reason)


def _probe(
    settings: MqttSettings,
    client_id: str,
    config_key: str,
    protocol: MQTTProtocolVersion,
    timeout_s: float,
) -> tuple[bool, ReasonCode | str]:
    client = make_client(settings, client_id=client_id, config_key=config_key, protocol=protocol)
    answer: list[ReasonCode | str] = []

    def on_connect(_c: paho.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        answer.append(reason)

    client.on_connect = on_connect
    client.connect(settings.host, settings.port, keepalive=max(settings.keepalive_s, 5))
    try:
        deadline = time.monotonic() + timeout_s
        while not answer and time.monotonic() < deadline:
            rc = client.loop(timeout=0.1)
            if rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_AGAIN):
                # The broker closed the socket (mosquitto does this after a refusing CONNACK).
                if not answer:
                    answer.append(f"connection lost ({paho.error_string(rc)})")
                break
        if not answer:
            return False, f"no CONNACK within {timeout_s:g} s"
        reason = answer[0]
        return isinstance(reason, ReasonCode) and not reason.is_failure, reason
    finally:
        client.disconnect()
        client.loop(timeout=0.05)
