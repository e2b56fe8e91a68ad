"""Station keys inside a PKCS#11 token through a rotation (the token twin of FileKeyRing).

Keys never leave the token, so a rotation moves labels, not files::

    <key_label>                the key that signs now (what keys show, selftest and run find)
    <key_label>.next           the new key while its rotation statement is pending
    <key_label>.old.<kid>      a key rotated away, destroyed in the token by ``keys retire``

Public, non-secret records sit in ``<key_dir>/token-keys/`` with the FileKeyRing layout:
``next/statement.cose``, ``next/switch.json`` (the switch plan, written first) and
``retired/<kid>.json`` + ``<kid>.pub.pem``. The switch relabels the old key, then the new one;
every step checks what the token holds first, so ``TokenKeyRing(...)`` finishes a switch a
crash cut short before anything reads a key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.errors import TokenKeyError
from edge_agent.signing.keyring import (
    NEXT_DIR,
    RETIRED_DIR,
    STATEMENT_FILE,
    SWITCH_FILE,
    RetiredKey,
    read_retired,
    write_file,
)
from edge_agent.signing.keys import public_key_pem
from edge_agent.signing.settings import Pkcs11Settings
from edge_agent.signing.signer import key_id
from edge_agent.signing.trust import iso_utc, parse_utc
from edge_agent.tokens.keys import TokenKey, create_key, destroy_key, find_key, has_key, relabel_key
from edge_agent.tokens.library import TokenSession, context
from edge_agent.tokens.signer import TokenSigner

log = logging.getLogger(__name__)

STATE_DIR = "token-keys"
_MAX_STATEMENT = 64 * 1024


class TokenKeyRing:
    """The rotation steps on P-256 keys inside the configured token (always P-256)."""

    def __init__(
        self, settings: Pkcs11Settings, key_dir: Path, *, legacy_alg_ids: bool = False
    ) -> None:
        self.settings = settings
        self.state_dir = key_dir / STATE_DIR
        self.next_dir = self.state_dir / NEXT_DIR
        self.retired_dir = self.state_dir / RETIRED_DIR
        self._legacy = legacy_alg_ids
        self._active: TokenSigner | None = None
        self._opened: list[TokenSigner] = []  # closed by close(): events may still be signing
        if (self.next_dir / SWITCH_FILE).exists():
            log.warning("finishing an interrupted key switch in %s", settings.describe())
            self._finish_switch()

    @property
    def next_label(self) -> str:
        """Label of the key waiting for its rotation statement to be accepted."""
        return f"{self.settings.key_label}.next"

    def old_label(self, kid: str) -> str:
        """Label of a rotated-away key until it is retired."""
        return f"{self.settings.key_label}.old.{kid}"

    def _session(self) -> TokenSession:
        return TokenSession(self.settings, rw=True)

    def _open(self, label: str) -> TokenSigner:
        signer = TokenSigner(
            dataclasses.replace(self.settings, key_label=label), legacy_alg_ids=self._legacy
        )
        self._opened.append(signer)
        return signer

    def active(self) -> TokenSigner:
        """The signer of the key that signs now (opened once)."""
        if self._active is None:
            self._active = self._open(self.settings.key_label)
        return self._active

    def create_next(self, alg: str = "p256") -> TokenSigner:
        """Create the next key in the token (always P-256: ``alg`` is the file keys' choice)."""
        if alg != "p256":
            log.info("token keys are P-256: signing.alg %s applies to key files only", alg)
        with self._session() as tk:
            if has_key(tk, self.next_label):
                raise TokenKeyError(
                    f"a key rotation is already pending ({self.next_label!r} in token "
                    f"{self.settings.token_label!r}); wait for the gateway's receipt "
                    "(edge-agent keys rotate --status) before rotating again",
                    **context(self.settings),
                )
            # a public half left by a creation cut short is replaced (no private key: checked)
            create_key(tk, label=self.next_label, force=True)
        with contextlib.suppress(FileNotFoundError):
            (self.next_dir / STATEMENT_FILE).unlink()
        return self.pending_signer()

    def pending_signer(self) -> TokenSigner:
        """The next key's signer (TokenKeyError when no rotation is pending)."""
        return self._open(self.next_label)

    def is_pending(self) -> bool:
        """A next key is in the token: its statement is on its way (or waits for the gateway)."""
        with self._session() as tk:
            return has_key(tk, self.next_label)

    def save_statement(self, statement: bytes) -> None:
        """Keep the signed statement on disk (it is public) before it goes to the outbox."""
        self.next_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_file(self.next_dir / STATEMENT_FILE, statement, 0o644)

    def statement(self) -> bytes | None:
        """The pending rotation's statement, if one was signed."""
        try:
            with (self.next_dir / STATEMENT_FILE).open("rb") as fh:
                return fh.read(_MAX_STATEMENT)
        except FileNotFoundError:
            return None

    def switch(self, *, rotation_id: str, retire_after: datetime) -> TokenSigner:
        """Make the next key the one that signs; the old one is relabelled until retired."""
        with self._session() as tk:
            old, new = find_key(tk), find_key(tk, self.next_label)
        plan = {
            "old_kid": key_id(old.public_key).hex(),
            "new_kid": key_id(new.public_key).hex(),
            "rotation_id": rotation_id,
            "rotated_at": iso_utc(datetime.now(UTC)),
            "retire_after": iso_utc(retire_after),
        }
        self.next_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_file(self.next_dir / SWITCH_FILE, json.dumps(plan).encode(), 0o644)
        self._finish_switch()
        self._active = None  # the configured label now names the new key
        return self.active()

    def _finish_switch(self) -> None:
        # each step looks at the token first, so it can run again after a crash anywhere
        plan = json.loads((self.next_dir / SWITCH_FILE).read_text())
        old, new = str(plan["old_kid"]), str(plan["new_kid"])
        self.retired_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem = self.retired_dir / f"{old}.pub.pem"
        with self._session() as tk:
            current = self._key_if(tk, self.settings.key_label)
            if current is not None and key_id(current.public_key).hex() == old:
                write_file(pem, public_key_pem(current.public_key), 0o644)
                relabel_key(tk, current, self.old_label(old))
            waiting = self._key_if(tk, self.next_label)
            if waiting is not None and key_id(waiting.public_key).hex() == new:
                relabel_key(tk, waiting, self.settings.key_label)
            kept = None if pem.exists() else self._key_if(tk, self.old_label(old))
            if kept is not None:
                write_file(pem, public_key_pem(kept.public_key), 0o644)
        record = {
            "kid": old,
            "rotated_to": new,
            "rotated_at": plan["rotated_at"],
            "retire_after": plan["retire_after"],
            "rotation_id": plan["rotation_id"],
        }
        write_file(self.retired_dir / f"{old}.json", json.dumps(record).encode(), 0o644)
        shutil.rmtree(self.next_dir)
        log.warning("station key switched from %s to %s in the token", old, new)

    @staticmethod
    def _key_if(tk: TokenSession, label: str) -> TokenKey | None:
        return find_key(tk, label) if has_key(tk, label) else None

    def retired(self) -> list[RetiredKey]:
        """Keys rotated away, oldest first; ``private_key`` names the label still in the token."""
        with self._session() as tk:
            return read_retired(
                self.retired_dir,
                lambda kid: self.old_label(kid) if has_key(tk, self.old_label(kid)) else None,
            )

    def retire(self, *, now: datetime | None = None, force: bool = False) -> list[str]:
        """Destroy in the token the rotated-away keys whose overlap has ended (all with
        ``force``); returns their kids. Public keys and records stay on disk."""
        moment = now or datetime.now(UTC)
        done = []
        for key in self.retired():
            if key.private_key is None or not (force or parse_utc(key.retire_after) <= moment):
                continue
            with self._session() as tk:
                destroy_key(tk, find_key(tk, key.private_key))
            done.append(key.kid)
            log.info("retired key %s: destroyed in token %r", key.kid, self.settings.token_label)
        return done

    def close(self) -> None:
        """Close the sessions of every signer this ring opened."""
        while self._opened:
            self._opened.pop().close()
        self._active = None
