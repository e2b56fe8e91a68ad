"""Config section ``[ingest]``: the upstream broker, the database, evidence and receipts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.dataform import bounded, pattern
from edge_agent.signing.settings import Pkcs11Settings
from edge_agent.uplink.settings import MqttSettings


@dataclass(frozen=True, kw_only=True)
class IngestSettings:
    """Where the ingest reads events, where it stores them and how it answers the gateway."""

    mqtt: MqttSettings = field(
        default_factory=lambda: MqttSettings(client_id="battrace-ingest", max_inflight=100)
    )
    # MQTT 5 shared subscription group: workers with the same group share the load
    # ("$share/<group>/..."); empty subscribes plainly (one worker gets everything).
    share_group: str = pattern(r"[A-Za-z0-9_-]{0,64}", default="")
    # "" = SQLite file <data_dir>/ingest.sqlite3; "sqlite:///path" or "postgresql://..." (libpq)
    database: str = ""
    data_dir: Path = Path("~/.local/share/edge-agent/ingest").expanduser()
    trust_store: Path = Path("~/.local/share/edge-agent/ingest/trust.json").expanduser()
    evidence_dir: Path | None = None  # default <data_dir>/evidence (content-addressed)
    max_message_bytes: int = bounded(256, 16 * 1024**2, default=64 * 1024)
    max_evidence_bytes: int = bounded(1024, 64 * 1024**2, default=8 * 1024**2)
    batch_max: int = bounded(1, 10_000, default=500)
    # evidence that arrives before its event (another worker may hold the event) waits this long
    evidence_wait_s: float = bounded(0.1, 3600.0, default=30.0)
    session_expiry_s: int = bounded(60, 2**32 - 1, default=30 * 86400)
    # signed receipts to the gateway for every stored or refused event; needs receipt_key_dir
    receipts: bool = True
    receipt_key_dir: Path | None = None  # the ingest's signing key (edge-agent keys init)
    receipt_pkcs11: Pkcs11Settings | None = None  # ... or a token key (keys init --pkcs11)

    def __post_init__(self) -> None:
        if self.receipt_key_dir is not None and self.receipt_pkcs11 is not None:
            raise ValueError("set receipt_key_dir or receipt_pkcs11, not both")

    @property
    def database_url(self) -> str:
        """The database to open: the configured URL or the embedded SQLite file."""
        return self.database or f"sqlite:///{self.data_dir / 'ingest.sqlite3'}"

    @property
    def evidence_path(self) -> Path:
        """Root of the content-addressed evidence store."""
        return self.evidence_dir or self.data_dir / "evidence"
