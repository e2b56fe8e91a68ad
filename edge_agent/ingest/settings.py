"""Config section ``[ingest]``: the upstream broker, the database, evidence and receipts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge_agent.dataform import bounded, pattern
from edge_agent.signing.settings import Pkcs11Settings
from edge_agent.uplink.settings import MqttSettings


@dataclass(frozen=True, kw_only=True)
class S3EvidenceSettings:
    """An S3-compatible bucket for the evidence photos (``[ingest.evidence.s3]``).

    Credentials come from ``credentials_file`` (AWS shared-credentials format, owner-only) or,
    when it is not set, from boto3's standard chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    ``AWS_PROFILE``/``profile``, ``~/.aws/credentials``, instance roles); never from this file.
    """

    bucket: str = pattern(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
    # "" = AWS itself; else the S3-compatible server, e.g. "https://minio.example.org:9000"
    endpoint_url: str = pattern(r"(https?://[^\s/?#]+(/[^\s?#]*)?)?", default="")
    # keys: <prefix>/sha256/ab/cd/<hex>; path segments of letters, digits, "_", ".", "-"
    prefix: str = pattern(r"([A-Za-z0-9_.-]{1,64}/){0,8}[A-Za-z0-9_.-]{0,64}", default="")
    region: str = pattern(r"[a-z0-9-]{0,32}", default="")  # "" = the chain's, else us-east-1
    addressing_style: Literal["auto", "path", "virtual"] = "auto"  # MinIO and moto: "path"
    credentials_file: Path | None = None
    profile: str = pattern(r"[A-Za-z0-9_.-]{0,64}", default="")  # section of credentials_file
    connect_timeout_s: float = bounded(0.1, 60.0, default=5.0)
    read_timeout_s: float = bounded(0.1, 300.0, default=30.0)
    max_attempts: int = bounded(1, 10, default=3)  # botocore "standard" retries, first included
    # Refused when set: a secret in the config file is copied with it (backups, tickets).
    secret_access_key: str | None = None

    def __post_init__(self) -> None:
        if self.secret_access_key is not None:
            raise ValueError(
                "secret_access_key: the secret never goes in the config file; put it in an "
                "owner-only credentials_file or the environment (AWS_SECRET_ACCESS_KEY)"
            )
        if ".." in self.bucket or ".." in self.prefix:
            raise ValueError("bucket and prefix may not contain '..'")
        if self.credentials_file is not None and not self.credentials_file.is_absolute():
            raise ValueError(
                f"credentials_file: must be an absolute path, got {str(self.credentials_file)!r}"
            )

    def describe(self) -> str:
        """``s3://bucket/prefix`` at the endpoint, for logs and messages."""
        where = f"s3://{self.bucket}/{self.prefix.strip('/')}".rstrip("/")
        return f"{where} ({self.endpoint_url})" if self.endpoint_url else where


@dataclass(frozen=True, kw_only=True)
class EvidenceSettings:
    """Where the photos go (``[ingest.evidence]``): a folder (default) or an S3 bucket."""

    store: Literal["filesystem", "s3"] = "filesystem"
    path: Path | None = None  # filesystem: default <data_dir>/evidence
    s3: S3EvidenceSettings | None = None

    def __post_init__(self) -> None:
        if self.store == "s3" and self.s3 is None:
            raise ValueError('store = "s3" needs an [ingest.evidence.s3] table (bucket, ...)')
        if self.store == "filesystem" and self.s3 is not None:
            raise ValueError('[ingest.evidence.s3] is used only with store = "s3"')
        if self.store == "s3" and self.path is not None:
            raise ValueError('path is the filesystem store\'s folder; store = "s3" has none')


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
    evidence: EvidenceSettings = field(default_factory=EvidenceSettings)
    evidence_dir: Path | None = None  # older spelling of evidence.path
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
        if self.evidence_dir is not None and (
            self.evidence.path is not None or self.evidence.store != "filesystem"
        ):
            raise ValueError("evidence_dir is the older spelling of evidence.path: set one")

    @property
    def database_url(self) -> str:
        """The database to open: the configured URL or the embedded SQLite file."""
        return self.database or f"sqlite:///{self.data_dir / 'ingest.sqlite3'}"

    @property
    def evidence_path(self) -> Path:
        """Root of the filesystem evidence store."""
        return self.evidence.path or self.evidence_dir or self.data_dir / "evidence"
