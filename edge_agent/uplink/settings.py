"""Config sections of the outbox and the MQTT uplink."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge_agent.dataform import bounded


@dataclass(frozen=True, kw_only=True)
class TlsSettings:
    """TLS for the broker connection; client certificate optional."""

    enabled: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_verify: bool = False
    # `config check` refuses port 8883 without TLS unless this says the broker means it
    plaintext_on_tls_port: bool = False


@dataclass(frozen=True, kw_only=True)
class MqttSettings:
    """Broker connection. ``host = ""`` means: use the embedded broker (demo only)."""

    host: str = "127.0.0.1"
    port: int = bounded(1, 65535, default=1883)
    client_id: str = ""
    username: str = ""
    password: str = ""
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    keepalive_s: int = bounded(5, 3600, default=30)
    topic_prefix: str = "battrace/v1"
    max_inflight: int = bounded(1, 1000, default=20)
    max_inflight_bytes: int = bounded(1024, 2**31, default=16 * 1024**2)
    reconnect_min_s: float = bounded(0.05, 60.0, default=0.5)
    reconnect_max_s: float = bounded(0.1, 3600.0, default=30.0)
    # a publish without PUBACK this long (while connected) is sent again
    ack_timeout_s: float = bounded(1.0, 3600.0, default=60.0)
    # back-off of a row the broker refused (PUBACK failure reason): doubles up to the max
    retry_min_s: float = bounded(0.01, 3600.0, default=1.0)
    retry_max_s: float = bounded(0.1, 86400.0, default=300.0)
    tls: TlsSettings = field(default_factory=TlsSettings)


@dataclass(frozen=True, kw_only=True)
class OutboxSettings:
    """SQLite outbox location and limits (reaching a limit refuses new events)."""

    path: Path | None = None  # default: <station.data_dir>/outbox.sqlite3
    max_events: int = bounded(1, 100_000_000, default=1_000_000)
    max_bytes: int = bounded(1024, 2**50, default=2 * 1024**3)
    max_age_days: float = bounded(0.01, 3650.0, default=90.0)
    min_free_disk_bytes: int = bounded(0, 2**50, default=64 * 1024**2)
    # kept free for deletes and checkpoints on a full disk (<outbox>.reserve); 0 = none
    reserve_bytes: int = bounded(0, 2**40, default=8 * 1024**2)


@dataclass(frozen=True, kw_only=True)
class UplinkSettings:
    """Where events go."""

    mqtt: MqttSettings = field(default_factory=MqttSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    # End-to-end receipts from a site gateway. "required": a row leaves the outbox only on
    # the gateway's signed "accepted" receipt; "off": on the broker's PUBACK (a direct
    # broker, weaker: a PUBACK only says the bytes arrived); "auto": required exactly when
    # receipts_trust is set.
    receipts: Literal["auto", "required", "off"] = "auto"
    # Trust store (JSON, `edge-agent keys trust --store FILE --add gateway.pub.pem`) of the
    # gateway keys whose receipts this station believes.
    receipts_trust: Path | None = None
    # A row sent (PUBACKed) without a receipt this long is sent again.
    receipt_timeout_s: float = bounded(0.1, 86400.0, default=30.0)

    @property
    def receipts_required(self) -> bool:
        """Whether rows wait for the gateway's receipt."""
        if self.receipts == "auto":
            return self.receipts_trust is not None
        return self.receipts == "required"
