"""Config section of the site gateway."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge_agent.dataform import bounded
from edge_agent.signing.settings import Pkcs11Settings
from edge_agent.uplink.settings import MqttSettings, OutboxSettings, TlsSettings


@dataclass(frozen=True, kw_only=True)
class DeadLetterSettings:
    """Limits of the dead letters (rejected messages kept for an operator); oldest go first."""

    max_count: int = bounded(1, 100_000_000, default=100_000)
    max_bytes: int = bounded(1024, 2**50, default=256 * 1024**2)
    max_age_days: float = bounded(0.01, 3650.0, default=30.0)


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    """Site broker in, upstream broker out, trust store and limits."""

    site_mqtt: MqttSettings = field(
        default_factory=lambda: MqttSettings(client_id="battrace-gateway", max_inflight=100)
    )
    # 8883 is the TLS port: TLS on by default (system CAs unless tls.ca_file is set)
    upstream_mqtt: MqttSettings = field(
        default_factory=lambda: MqttSettings(port=8883, tls=TlsSettings(enabled=True))
    )
    upstream_prefix: str = "battrace/v1"
    trust_store: Path = Path("~/.local/share/edge-agent/gateway/trust.json").expanduser()
    data_dir: Path = Path("~/.local/share/edge-agent/gateway").expanduser()
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    dead_letters: DeadLetterSettings = field(default_factory=DeadLetterSettings)
    max_message_bytes: int = bounded(256, 16 * 1024**2, default=64 * 1024)
    max_evidence_bytes: int = bounded(1024, 64 * 1024**2, default=8 * 1024**2)
    # Validate the whole event body against the v1 model (slow in Python) or only the fields
    # the gateway routes on; the signature, key, ids, epoch/seq and evidence are always checked.
    full_body_check: bool = False
    replay_window: int = bounded(1, 1024, default=32)
    # A key rotation statement keeps the old key valid for the overlap it asks for, at most
    # this long (counted from the gateway's acceptance).
    rotation_max_overlap_s: int = bounded(0, 366 * 86400, default=30 * 86400)
    # Rejected messages are re-published (QoS 0, raw bytes) on the SITE broker under
    # "<quarantine_topic>/<reason>" when this is set; empty turns it off.
    quarantine_topic: str = ""
    # Signed receipts to the stations (accepted / rejected with the reason) need the gateway's
    # own key: `edge-agent keys init --dir <receipt_key_dir>`. Unset: no receipts are sent,
    # and stations with uplink.receipts = "required" keep their events (re-sent, never dropped).
    receipt_key_dir: Path | None = None
    # Signed receipts from the ingest (upstream). "required": a forwarded row leaves the outbox
    # only on the ingest's "accepted" receipt on <upstream_prefix>/<site>/<station>/receipt/
    # upstream; "off": on the upstream broker's PUBACK (weaker: a 3.1.1 broker acknowledges a
    # message its ACL drops); "auto": required exactly when upstream_receipts_trust is set.
    upstream_receipts: Literal["auto", "required", "off"] = "auto"
    # Trust store of the ingest's receipt keys (`edge-agent keys trust --store FILE --add
    # ingest.pub.pem`).
    upstream_receipts_trust: Path | None = None
    # A forwarded row PUBACKed without a receipt this long is sent again (the ingest answers
    # a duplicate again).
    upstream_receipt_timeout_s: float = bounded(0.1, 86400.0, default=30.0)
    # ... or a P-256 key inside a PKCS#11 token (`edge-agent keys init --pkcs11`); not both.
    receipt_pkcs11: Pkcs11Settings | None = None
    # Messages verified and committed per transaction (one fsync per batch, then the acks).
    batch_max: int = bounded(1, 10_000, default=200)
    # Evidence that arrives before its event is held (unacknowledged) this long, then rejected.
    evidence_wait_s: float = bounded(0.1, 3600.0, default=30.0)
    max_held_evidence: int = bounded(1, 10_000, default=16)
    # The site session survives gateway restarts (MQTT 5 session expiry; 3.1.1: clean_session off).
    session_expiry_s: int = bounded(60, 2**32 - 1, default=30 * 86400)

    def __post_init__(self) -> None:
        if self.receipt_key_dir is not None and self.receipt_pkcs11 is not None:
            raise ValueError("set receipt_key_dir or receipt_pkcs11, not both")

    @property
    def upstream_receipts_required(self) -> bool:
        """Whether forwarded rows wait for the ingest's receipt."""
        if self.upstream_receipts == "auto":
            return self.upstream_receipts_trust is not None
        return self.upstream_receipts == "required"

    @property
    def outbox_path(self) -> Path:
        """The gateway's outbox database (reuses the uplink outbox)."""
        return self.outbox.path or self.data_dir / "outbox.sqlite3"

    @property
    def state_path(self) -> Path:
        """Seen event ids, replay windows and expected evidence."""
        return self.data_dir / "state.sqlite3"

    @property
    def dead_letters_path(self) -> Path:
        """Rejected messages kept for ``edge-agent gateway rejected``."""
        return self.data_dir / "deadletters.sqlite3"
