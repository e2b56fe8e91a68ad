"""Broker check: connect with the configured host, TLS and credentials and wait for CONNACK."""

from __future__ import annotations

import logging
import ssl

from edge_agent.errors import ConfigError
from edge_agent.selftest.model import (
    CheckContext,
    Outcome,
    SelftestConfig,
    failed,
    passed,
    skipped,
)
from edge_agent.uplink.mqtt_client import connect_probe, tls_problem

log = logging.getLogger("edge_agent.selftest.mqtt")

_CREDENTIAL_REASONS = {"Bad user name or password", "Not authorized"}


def broker_required(config: SelftestConfig) -> bool:
    """Required rule: a broker host is configured (empty means the embedded demo broker)."""
    return bool(config.uplink.mqtt.host)


def check_broker(ctx: CheckContext) -> Outcome:
    """The broker accepts a connection with uplink.mqtt's host, port, TLS and credentials."""
    settings = ctx.config.uplink.mqtt
    if not settings.host:
        return skipped("uplink.mqtt.host empty: embedded demo broker")
    where = f"{settings.host}:{settings.port}"
    try:
        ok, reason = connect_probe(settings, timeout_s=max(settings.keepalive_s / 3, 3.0))
    except ConfigError as exc:
        return failed(str(exc), "fix the file path in the config or create the file")
    except ssl.SSLError as exc:
        return failed(
            f"TLS handshake with {where} failed: {tls_problem(exc)}",
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
