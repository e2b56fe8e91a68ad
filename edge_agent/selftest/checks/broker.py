"""Broker check: connect with the configured host, TLS and credentials and wait for CONNACK."""

from __future__ import annotations

import logging
import ssl
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.selftest.model import (
    CheckContext,
    Outcome,
    SelftestConfig,
    failed,
    passed,
    skipped,
)
from edge_agent.uplink.settings import MqttSettings

log = logging.getLogger("edge_agent.selftest.mqtt")

_CREDENTIAL_REASONS = {"Bad user name or password", "Not authorized"}


def broker_required(config: SelftestConfig) -> bool:
    """Required rule: a broker host is configured (empty means the embedded demo broker)."""
    return bool(config.uplink.mqtt.host)


def make_client(settings: MqttSettings) -> mqtt.Client:
    """The one place the self-test builds its MQTT client (the uplink's factory replaces it)."""
    protocol = mqtt.MQTTv311 if settings.protocol == "3.1.1" else mqtt.MQTTv5
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{settings.client_id or 'edge-agent'}-selftest-{uuid.uuid4().hex[:8]}",
        protocol=protocol,
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    tls = settings.tls
    if tls.enabled:
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
        )
        client.tls_insecure_set(tls.insecure_skip_verify)
    return client


def connect_once(settings: MqttSettings, timeout_s: float) -> tuple[bool, str]:
    """(accepted, reason): one CONNECT/CONNACK round trip without a background thread."""
    client = make_client(settings)
    answer: list[str] = []

    def on_connect(
        _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object = None
    ) -> None:
        answer.append(str(reason))

    client.on_connect = on_connect
    client.connect(settings.host, settings.port, keepalive=max(settings.keepalive_s, 5))
    try:
        deadline = time.monotonic() + timeout_s
        while not answer and time.monotonic() < deadline:
            rc = client.loop(timeout=0.1)
            if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                # The broker closed the socket (mosquitto does this after a refusing CONNACK).
                if not answer:
                    answer.append(f"connection lost ({mqtt.error_string(rc)})")
                break
        if not answer:
            return False, f"no CONNACK within {timeout_s:g} s"
        return answer[0] == "Success", answer[0]
    finally:
        client.disconnect()
        client.loop(timeout=0.05)


def check_broker(ctx: CheckContext) -> Outcome:
    """The broker accepts a connection with uplink.mqtt's host, port, TLS and credentials."""
    settings = ctx.config.uplink.mqtt
    if not settings.host:
        return skipped("uplink.mqtt.host empty: embedded demo broker")
    where = f"{settings.host}:{settings.port}"
    try:
        ok, reason = connect_once(settings, timeout_s=max(settings.keepalive_s / 3, 3.0))
    except ssl.SSLError as exc:
        return failed(
            f"TLS handshake with {where} failed: {exc.reason or exc}",
            "check uplink.mqtt.tls.ca_file matches the broker certificate and the hostname",
        )
    except (ConnectionRefusedError, TimeoutError, OSError) as exc:
        log.warning("broker %s unreachable: %s", where, exc)
        return failed(
            f"cannot reach {where}: {exc.strerror or exc}",
            "start the broker (`systemctl status mosquitto`) "
            "or fix uplink.mqtt.host/port and the firewall",
        )
    if ok:
        user = f" as {settings.username!r}" if settings.username else ""
        tls = " over TLS" if settings.tls.enabled else ""
        return passed(f"{where} accepted the connection{user}{tls}")
    if reason in _CREDENTIAL_REASONS:
        return failed(
            f"{where} refused the credentials: {reason}",
            "fix uplink.mqtt.username/password (and the broker's password file and ACL)",
        )
    return failed(
        f"{where} refused the connection: {reason}",
        "see the broker log (`journalctl -u mosquitto`)",
    )
