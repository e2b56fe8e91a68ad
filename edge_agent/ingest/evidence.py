"""Content-addressed evidence store on the filesystem: ``<root>/sha256/ab/cd/<hex>``.

A file is written under a temporary name, fsynced and renamed, so a reader sees either the
whole photo or none; its name is its SHA-256, so storing twice is harmless and a reader can
always re-check it. The S3-compatible store is ``blobs_s3``; both implement ``BlobStore``.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge_agent.errors import IngestError
from edge_agent.ingest.blobs import BlobStore, blob_key
from edge_agent.ingest.settings import IngestSettings


class EvidenceStore(BlobStore):
    """Photos by SHA-256 under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> EvidenceStore:
        """The folder ``[ingest.evidence] path`` (default ``<data_dir>/evidence``)."""
        return cls(settings.evidence_path)

    def describe(self) -> str:
        """The root folder."""
        return str(self.root)

    def path(self, sha256: str) -> Path:
        """Where the blob with this hash lives."""
        return self.root / blob_key(sha256)

    def _store(self, sha256: str, key: str, data: bytes) -> None:
        target = self.root / key
        if target.exists():
            return
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{sha256}.{os.getpid()}.tmp")
            with tmp.open("wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(target)
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise IngestError(f"cannot store evidence {sha256}: {exc}") from exc

    def _load(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None
