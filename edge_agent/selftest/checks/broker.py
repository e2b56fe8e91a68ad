"""Broker check: connect with the configured host, TLS and credentials and wait for CONNACK."""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, datetime
from pathlib import Path

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
# TLS alerts a broker sends when it does not accept the client certificate (or gets none)
_CLIENT_CERT_ALERTS = (
    "CERTIFICATE_REQUIRED",
    "BAD_CERTIFICATE",
    "UNKNOWN_CA",
    "CERTIFICATE_EXPIRED",
    "CERTIFICATE_UNKNOWN",
    "HANDSHAKE_FAILURE",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE",
)


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
    except ssl.SSLCertVerificationError as exc:
        return failed(
            f"TLS: {where} presented a certificate this station does not trust "
            f"({exc.verify_message or exc.reason})",
            "uplink.mqtt.tls.ca_file must be the CA that signed the broker certificate, "
            "and uplink.mqtt.host a name the certificate lists",
        )
    except ssl.SSLError as exc:
        return _tls_failure(where, exc)
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
        if settings.tls.cert_file is not None:
            return failed(
                f"{where} refused the credentials: {reason} (certificate {settings.tls.cert_file})",
                "with use_identity_as_username the certificate CN is the user name: it must be "
                "this station's id, and the broker ACL must list it",
            )
        return failed(
            f"{where} refused the credentials: {reason}",
            "fix uplink.mqtt.username/password (and the broker's password file and ACL)",
        )
    if not settings.tls.enabled and (reason.startswith(("connection lost", "no CONNACK"))):
        return failed(
            f"{where} closed a plaintext connection ({reason}): the broker probably expects TLS",
            "set [uplink.mqtt.tls] enabled = true with the site CA and this station's "
            "certificate (the site broker listens on 8883 with client certificates)",
        )
    if settings.tls.enabled and reason.startswith("connection lost"):
        # paho finishes the handshake inside its loop, so a refused client certificate shows
        # up as a closed connection: say which certificate, and whether our CA issued it
        cert, ca = settings.tls.cert_file, settings.tls.ca_file
        if cert is None:
            return failed(
                f"{where} closed the TLS connection ({reason}): it requires a client certificate",
                "set uplink.mqtt.tls.cert_file and key_file to this station's certificate",
            )
        return failed(
            f"{where} closed the TLS connection ({reason}): it refused the client certificate "
            f"{cert}{_issuer_note(cert, ca)}",
            "use a current certificate issued by the site CA (CN = station id); "
            "the broker log says why (`journalctl -u mosquitto`)",
        )
    return failed(
        f"{where} refused the connection: {reason}",
        "see the broker log (`journalctl -u mosquitto`)",
    )


def _tls_failure(where: str, exc: ssl.SSLError) -> Outcome:
    """Name a handshake failure: our certificate refused, or something else in TLS."""
    reason = str(exc.reason or exc)
    if any(tag in reason for tag in _CLIENT_CERT_ALERTS):
        return failed(
            f"TLS: {where} refused this station's client certificate ({reason})",
            "set uplink.mqtt.tls.cert_file/key_file to a current certificate issued by the "
            "site CA (CN = station id)",
        )
    if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER_FAILURE" in reason:
        return failed(
            f"TLS: {where} does not speak TLS ({reason})",
            "the port is a plaintext listener: use the broker's TLS port (8883) or turn TLS off",
        )
    return failed(
        f"TLS handshake with {where} failed: {tls_problem(exc)}",
        "check uplink.mqtt.tls.ca_file matches the broker certificate and the hostname",
    )


def _issuer_note(cert_file: Path, ca_file: Path | None) -> str:
    """' (issued by X, not by the CA in ca_file)' or ' (expired ...)'; '' when unknown."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        if cert.not_valid_after_utc < datetime.now(UTC):
            return f" (expired {cert.not_valid_after_utc:%Y-%m-%d})"
        if ca_file is None:
            return ""
        ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
    except (OSError, ValueError):
        return ""
    if cert.issuer != ca.subject:
        return f" (issued by {cert.issuer.rfc4514_string()}, not by the CA in {ca_file})"
    return ""
