"""Content-addressed evidence store on the filesystem: ``<root>/sha256/ab/cd/<hex>``.

A file is written under a temporary name, fsynced and renamed, so a reader sees either the
whole photo or none; its name is its SHA-256, so storing twice is harmless and a reader can
always re-check it. (An S3-compatible store is a later option, see docs/ingest.md.)
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from edge_agent.errors import IngestError

_SHA256 = re.compile(r"[0-9a-f]{64}")


class EvidenceStore:
    """Photos by SHA-256 under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the blob with this hash lives."""
        if not _SHA256.fullmatch(sha256):
            raise IngestError(f"not a SHA-256 hex digest: {sha256[:80]!r}")
        return self.root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data``; its SHA-256 hex."""
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if target.exists():
            return sha
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{sha}.{os.getpid()}.tmp")
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
            raise IngestError(f"cannot store evidence {sha}: {exc}") from exc
        return sha

    def get(self, sha256: str) -> bytes | None:
        """The stored bytes, or None when missing."""
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def check(self, sha256: str) -> str:
        """ "ok", "missing" or "mismatch" (the file no longer hashes to its name)."""
        data = self.get(sha256)
        if data is None:
            return "missing"
        return "ok" if hashlib.sha256(data).hexdigest() == sha256 else "mismatch"
