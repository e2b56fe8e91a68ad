"""Station key files through a rotation: the key that signs, the next one, the retired ones.

Layout of the key folder::

    station.key.pem, station.pub.pem     the key that signs now
    next/station.key.pem, .pub.pem       the new key while its rotation statement is pending
    next/statement.cose                  that statement (queued again if the outbox lost it)
    next/switch.json                     written first when the switch starts (crash recovery)
    retired/<kid>.pub.pem, <kid>.json    every key rotated away: when, to which key, until when
    retired/<kid>.key.pem                its private key until ``keys retire`` deletes it

The switch (``FileKeyRing.switch``) copies the old key into ``retired/``, then renames the
next key over ``station.*``; ``switch.json`` makes it resumable: ``FileKeyRing(...)`` finishes
an interrupted switch before anything reads a key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from edge_agent.errors import KeyFileError
from edge_agent.signing.keys import (
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    init_keys,
    load_public_key,
    load_signer,
)
from edge_agent.signing.signer import SoftwareSigner, key_id
from edge_agent.signing.trust import iso_utc, parse_utc

log = logging.getLogger(__name__)

NEXT_DIR = "next"
RETIRED_DIR = "retired"
STATEMENT_FILE = "statement.cose"
SWITCH_FILE = "switch.json"
_MAX_STATEMENT = 64 * 1024


@dataclass(frozen=True, slots=True)
class RetiredKey:
    """A key rotated away; ``private_key`` says where it still is (a file, a token label),
    None once it was deleted (retired)."""

    kid: str
    rotated_to: str
    rotated_at: str
    retire_after: str
    private_key: str | None


def read_retired(retired_dir: Path, locate: Callable[[str], str | None]) -> list[RetiredKey]:
    """The records in ``retired_dir``, oldest first; ``locate(kid)`` finds the private key."""
    out = []
    for record in sorted(retired_dir.glob("*.json")):
        try:
            plain = json.loads(record.read_text())
            out.append(
                RetiredKey(
                    kid=str(plain["kid"]),
                    rotated_to=str(plain["rotated_to"]),
                    rotated_at=str(plain["rotated_at"]),
                    retire_after=str(plain["retire_after"]),
                    private_key=locate(str(plain["kid"])),
                )
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("unreadable retired key record %s: %s", record, exc)
    return sorted(out, key=lambda r: r.rotated_at)


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` durably (temporary file, fsync, rename, fsync the folder)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _sync_dir(path.parent)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileKeyRing:
    """The rotation steps on PKCS#8 key files (tokens.keyring.TokenKeyRing for token keys)."""

    def __init__(self, key_dir: Path, *, legacy_alg_ids: bool = False) -> None:
        self.key_dir = key_dir
        self.next_dir = key_dir / NEXT_DIR
        self.retired_dir = key_dir / RETIRED_DIR
        self._legacy = legacy_alg_ids
        if (self.next_dir / SWITCH_FILE).exists():
            log.warning("finishing an interrupted key switch in %s", key_dir)
            self._finish_switch()

    def active(self) -> SoftwareSigner:
        """The signer of the key that signs now."""
        return load_signer(self.key_dir, legacy_alg_ids=self._legacy)

    def create_next(self, alg: Literal["ed25519", "p256"]) -> SoftwareSigner:
        """Create the next key (KeyFileError if a rotation is already pending)."""
        if (self.next_dir / PRIVATE_KEY_FILE).exists():
            raise KeyFileError(
                f"a key rotation is already pending in {self.next_dir}; wait for the gateway's "
                "receipt (edge-agent keys show) before rotating again"
            )
        init_keys(self.next_dir, alg, force=True)  # a half-made next key from a crash is replaced
        with contextlib.suppress(FileNotFoundError):
            (self.next_dir / STATEMENT_FILE).unlink()
        return self.pending_signer()

    def pending_signer(self) -> SoftwareSigner:
        """The next key's signer (KeyFileError when no rotation is pending)."""
        return load_signer(self.next_dir, legacy_alg_ids=self._legacy)

    def is_pending(self) -> bool:
        """A next key exists: its statement is on its way (or waits for the gateway)."""
        return (self.next_dir / PRIVATE_KEY_FILE).exists()

    def save_statement(self, statement: bytes) -> None:
        """Keep the signed statement beside the next key (before it goes to the outbox)."""
        write_file(self.next_dir / STATEMENT_FILE, statement, 0o600)

    def statement(self) -> bytes | None:
        """The pending rotation's statement, if one was signed."""
        path = self.next_dir / STATEMENT_FILE
        try:
            with path.open("rb") as fh:
                return fh.read(_MAX_STATEMENT)
        except FileNotFoundError:
            return None

    def switch(self, *, rotation_id: str, retire_after: datetime) -> SoftwareSigner:
        """Make the next key the one that signs; the old one moves to ``retired/``."""
        if not self.is_pending():
            raise KeyFileError(f"no next key in {self.next_dir} to switch to")
        old_kid = key_id(load_public_key(self.key_dir / PUBLIC_KEY_FILE)).hex()
        new_kid = key_id(load_public_key(self.next_dir / PUBLIC_KEY_FILE)).hex()
        plan = {
            "old_kid": old_kid,
            "new_kid": new_kid,
            "rotation_id": rotation_id,
            "rotated_at": iso_utc(datetime.now(UTC)),
            "retire_after": iso_utc(retire_after),
        }
        write_file(self.next_dir / SWITCH_FILE, json.dumps(plan).encode(), 0o600)
        self._finish_switch()
        return self.active()

    def _finish_switch(self) -> None:
        # every step can run again: a crash anywhere leaves switch.json, and the next start
        # (FileKeyRing(...)) runs the remaining steps
        plan = json.loads((self.next_dir / SWITCH_FILE).read_text())
        old = plan["old_kid"]
        self.retired_dir.mkdir(mode=0o700, exist_ok=True)
        kept_key = self.retired_dir / f"{old}.key.pem"
        if not kept_key.exists():  # station.* is still the old key until the renames below
            for name, target, mode in (
                (PUBLIC_KEY_FILE, f"{old}.pub.pem", 0o644),
                (PRIVATE_KEY_FILE, f"{old}.key.pem", 0o600),
            ):
                write_file(self.retired_dir / target, (self.key_dir / name).read_bytes(), mode)
        record = {
            "kid": old,
            "rotated_to": plan["new_kid"],
            "rotated_at": plan["rotated_at"],
            "retire_after": plan["retire_after"],
            "rotation_id": plan["rotation_id"],
        }
        write_file(self.retired_dir / f"{old}.json", json.dumps(record).encode(), 0o644)
        for name in (PUBLIC_KEY_FILE, PRIVATE_KEY_FILE):  # the private key last: it signs
            if (self.next_dir / name).exists():
                os.replace(self.next_dir / name, self.key_dir / name)
        _sync_dir(self.key_dir)
        shutil.rmtree(self.next_dir)
        _sync_dir(self.key_dir)
        log.warning("station key switched from %s to %s", old, plan["new_kid"])

    def retired(self) -> list[RetiredKey]:
        """Keys rotated away, oldest first."""

        def locate(kid: str) -> str | None:
            key = self.retired_dir / f"{kid}.key.pem"
            return str(key) if key.exists() else None

        return read_retired(self.retired_dir, locate)

    def retire(self, *, now: datetime | None = None, force: bool = False) -> list[str]:
        """Delete the private keys of rotated-away keys whose overlap has ended (all with
        ``force``); returns their kids. Public keys and records stay."""
        moment = now or datetime.now(UTC)
        done = []
        for key in self.retired():
            if key.private_key is None:
                continue
            if force or parse_utc(key.retire_after) <= moment:
                Path(key.private_key).unlink()
                done.append(key.kid)
                log.info("retired key %s: private key deleted", key.kid)
        if done:
            _sync_dir(self.retired_dir)
        return done

    def close(self) -> None:
        """Nothing to release: key file signers hold no session."""
