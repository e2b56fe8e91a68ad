"""Evidence blob stores: photos content-addressed by SHA-256, on the filesystem or in S3.

One abstract class for the seam (``BlobStore``): backends override ``_store`` and ``_load``;
the checks (hash shape, idempotent put, re-hashing on ``check``) live here once. Backends are
registered by name and imported lazily, so the filesystem store never imports boto3.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from abc import ABC, abstractmethod
from typing import Literal

from edge_agent.errors import IngestError
from edge_agent.ingest.settings import IngestSettings

_SHA256 = re.compile(r"[0-9a-f]{64}")

BlobState = Literal["ok", "missing", "mismatch"]

#: store name -> "module:Class"; each class takes the ingest settings
BACKENDS = {
    "filesystem": "edge_agent.ingest.evidence:EvidenceStore",
    "s3": "edge_agent.ingest.blobs_s3:S3BlobStore",
}


def blob_key(sha256: str) -> str:
    """The relative name of a blob: ``sha256/ab/cd/<hex>``; IngestError for a non-hash."""
    if not _SHA256.fullmatch(sha256):
        raise IngestError(f"not a SHA-256 hex digest: {sha256[:80]!r}")
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class BlobStore(ABC):
    """Photos by the SHA-256 hex of their bytes (the hash in the signed event)."""

    def put(self, data: bytes) -> str:
        """Store ``data`` durably (nothing done when already stored); its SHA-256 hex.

        IngestError when the store cannot take it: the caller must not acknowledge the photo.
        """
        sha = hashlib.sha256(data).hexdigest()
        self._store(sha, blob_key(sha), data)
        return sha

    def get(self, sha256: str) -> bytes | None:
        """The stored bytes, or None when missing (IngestError when the store fails)."""
        return self._load(blob_key(sha256))

    def check(self, sha256: str) -> BlobState:
        """ "ok", "missing" or "mismatch" (the stored bytes no longer hash to their name)."""
        data = self.get(sha256)
        if data is None:
            return "missing"
        return "ok" if hashlib.sha256(data).hexdigest() == sha256 else "mismatch"

    def close(self) -> None:  # noqa: B027 (optional hook: a folder has nothing to close)
        """Let go of connections."""

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: IngestSettings) -> BlobStore:
        """The store as ``[ingest.evidence]`` configures it."""

    @abstractmethod
    def describe(self) -> str:
        """Where the blobs live, for logs and messages."""

    @abstractmethod
    def _store(self, sha256: str, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` unless a blob is there; durable on return."""

    @abstractmethod
    def _load(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None."""


def open_blob_store(settings: IngestSettings) -> BlobStore:
    """The evidence store ``[ingest.evidence]`` names."""
    name = settings.evidence.store
    module, _, cls = BACKENDS[name].partition(":")
    try:
        backend: type[BlobStore] = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise IngestError(
            f"evidence store {name!r} needs {exc.name}: pip install 'edge-agent[{name}]'"
        ) from None
    return backend.from_settings(settings)
