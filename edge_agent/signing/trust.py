"""Trust store: which station keys a verifier accepts, for whom and when (a JSON file).

Format (``version`` 1)::

    {"version": 1,
     "keys": {"<kid hex>": {"public_key": "-----BEGIN PUBLIC KEY-----...", "station": "st-01",
                            "site": "plant-a", "not_before": "2026-01-01T00:00:00Z",
                            "not_after": null, "revoked": false, "added": "2026-11-27T10:00:00Z",
                            "unrevoked": null, "unrevoked_by": null}}}

A revoked key is trusted again only on purpose (``add(..., unrevoke=True)``); the store then
records when and by whom (``unrevoked``, ``unrevoked_by``) beside the entry.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.dataform import DataFormError, from_plain, pattern, to_plain
from edge_agent.errors import ConfigError, KeyFileError, RevokedKeyError, TrustStoreError
from edge_agent.signing.algorithms import PublicKey
from edge_agent.signing.keys import parse_public_key, public_key_pem
from edge_agent.signing.signer import key_id
from edge_agent.signing.tpm_attestation import AttestationResult

log = logging.getLogger(__name__)

_KID_HEX = re.compile(r"[0-9a-f]{32}")
# A trust store holds a few hundred keys (~1 KiB each); anything far larger is not one.
MAX_TRUST_BYTES = 4 * 1024 * 1024
_ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z"


@dataclass(frozen=True, kw_only=True)
class TrustEntry:
    """One trusted key as stored in the file."""

    public_key: str
    station: str = pattern(r"[A-Za-z0-9_-]{0,64}", default="")
    site: str = pattern(r"[A-Za-z0-9_-]{0,64}", default="")
    not_before: str | None = pattern(_ISO_UTC, default=None)
    not_after: str | None = pattern(_ISO_UTC, default=None)
    revoked: bool = False
    added: str | None = pattern(_ISO_UTC, default=None)
    # the last time a revoked key was trusted again, and who did it (free text, one line)
    unrevoked: str | None = pattern(_ISO_UTC, default=None)
    unrevoked_by: str | None = pattern(r"[^\x00-\x1f\x7f]{1,128}", default=None)
    # the rotation chain (a key rotation statement accepted by this verifier, rotation.py)
    rotated_from: str | None = pattern(r"[0-9a-f]{32}", default=None)
    rotated_to: str | None = pattern(r"[0-9a-f]{32}", default=None)
    rotated_at: str | None = pattern(_ISO_UTC, default=None)
    rotation_id: str | None = pattern(r"[A-Za-z0-9_.:-]{1,128}", default=None)
    # verified TPM attestation of the key (tpm_attestation.py); kept when the key is re-added
    attestation: AttestationResult | None = None


@dataclass(frozen=True, kw_only=True)
class TrustFile:
    """The whole trust store file."""

    version: int = 1
    keys: dict[str, TrustEntry] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TrustedKey:
    """A key a verifier may use, with the station it belongs to and its validity."""

    kid: bytes
    public_key: PublicKey
    station: str = ""
    site: str = ""
    not_before: datetime | None = None
    not_after: datetime | None = None
    revoked: bool = False


def iso_utc(moment: datetime) -> str:
    """``2026-11-27T10:00:00Z`` form of an aware datetime."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    """Parse the ``...Z`` form back into an aware datetime; ValueError if not a real time."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_bounded(path: Path, *, limit: int, what: str) -> bytes | None:
    """At most ``limit`` bytes of a regular file; None if missing, ConfigError otherwise."""
    try:
        # stat before open: opening a FIFO would block, reading /dev/zero would never end
        if not stat.S_ISREG(path.stat().st_mode):
            raise ConfigError(f"{what} {path} is not a regular file")
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ConfigError(f"{what} {path} is larger than {limit} bytes")
    return data


def check_validity(key: TrustedKey, at: datetime | None) -> TrustedKey:
    """Raise TrustStoreError if ``key`` is revoked or outside its validity at ``at`` (now)."""
    kid = key.kid.hex()
    if key.revoked:
        raise TrustStoreError("revoked", f"kid {kid} is revoked")
    moment = at or datetime.now(UTC)
    if moment.tzinfo is None:  # a naive time would make the comparison raise; treat it as UTC
        moment = moment.replace(tzinfo=UTC)
    if key.not_before is not None and moment < key.not_before:
        raise TrustStoreError("not_yet_valid", f"kid {kid} valid from {iso_utc(key.not_before)}")
    if key.not_after is not None and moment > key.not_after:
        raise TrustStoreError("expired", f"kid {kid} expired {iso_utc(key.not_after)}")
    return key


class TrustStore:
    """Key ids -> trusted public keys, persisted as JSON; a KeyResolver for verify_sign1."""

    def __init__(self, path: Path, entries: Mapping[str, TrustEntry] | None = None) -> None:
        self.path = path
        self._entries: dict[str, TrustEntry] = dict(entries or {})
        self._keys: dict[bytes, TrustedKey] = {}
        for kid_hex, entry in self._entries.items():
            self._keys[bytes.fromhex(kid_hex)] = self._materialise(kid_hex, entry)

    @classmethod
    def load(cls, path: Path, *, create: bool = False) -> TrustStore:
        """Read ``path``; a missing file is a ConfigError (an empty store only with ``create``,
        for commands that add keys), a malformed one a ConfigError."""
        raw = read_bounded(path, limit=MAX_TRUST_BYTES, what="trust store")
        if raw is None:
            if create:
                return cls(path)
            raise ConfigError(f"trust store {path} does not exist")
        try:
            plain = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"cannot read trust store {path}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"trust store {path} is not valid JSON: {exc}") from None
        except RecursionError:
            raise ConfigError(f"trust store {path} is nested too deeply to be one") from None
        try:
            data = from_plain(TrustFile, plain)
        except DataFormError as exc:
            raise ConfigError(f"{path}: {exc.problem}", key_path=exc.key_path) from None
        if data.version != 1:
            raise ConfigError(f"{path}: unsupported version {data.version}", key_path="version")
        for kid_hex in data.keys:
            if not _KID_HEX.fullmatch(kid_hex):
                raise ConfigError(
                    f"{path}: key id must be 32 lowercase hex digits", key_path=f"keys.{kid_hex}"
                )
        return cls(path, data.keys)

    @staticmethod
    def _materialise(kid_hex: str, entry: TrustEntry) -> TrustedKey:
        where = f"keys.{kid_hex}"
        try:
            public = parse_public_key(entry.public_key.encode(), source="public_key")
        except KeyFileError as exc:
            raise ConfigError(str(exc), key_path=f"{where}.public_key") from None
        if key_id(public).hex() != kid_hex:
            raise ConfigError("does not match the key id of its public key", key_path=where)
        return TrustedKey(
            kid=bytes.fromhex(kid_hex),
            public_key=public,
            station=entry.station,
            site=entry.site,
            not_before=_entry_time(entry.not_before, f"{where}.not_before"),
            not_after=_entry_time(entry.not_after, f"{where}.not_after"),
            revoked=entry.revoked,
        )

    def add(
        self,
        public_key_pem: bytes,
        *,
        station: str,
        site: str,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        unrevoke: bool = False,
        by: str = "",
        attestation: AttestationResult | None = None,
    ) -> bytes:
        """Trust a station public key (PEM); returns its kid. Re-adding updates the entry; a
        revoked key is refused (RevokedKeyError) unless ``unrevoke``, which records ``by``.
        ``attestation``: verified TPM evidence of this key, recorded with it."""
        public = parse_public_key(public_key_pem)
        kid = key_id(public)
        old = self._entries.get(kid.hex())
        unrevoked, unrevoked_by = (old.unrevoked, old.unrevoked_by) if old else (None, None)
        if old is not None and old.revoked:
            if not unrevoke:
                raise RevokedKeyError(
                    f"key {kid.hex()} is revoked; add it with --unrevoke to trust it again"
                )
            unrevoked, unrevoked_by = iso_utc(datetime.now(UTC)), by or None
        entry = TrustEntry(
            public_key=public_key_pem_text(public),
            station=station,
            site=site,
            not_before=iso_utc(not_before) if not_before else None,
            not_after=iso_utc(not_after) if not_after else None,
            added=iso_utc(datetime.now(UTC)),
            unrevoked=unrevoked,
            unrevoked_by=unrevoked_by,
        )
        if old is not None:  # the rotation chain stays recorded when a key is re-added
            entry = replace(
                entry,
                rotated_from=old.rotated_from,
                rotated_to=old.rotated_to,
                rotated_at=old.rotated_at,
                rotation_id=old.rotation_id,
                attestation=old.attestation,
            )
        if attestation is not None:
            if attestation.kid != kid.hex():
                raise ConfigError(f"the attestation is for kid {attestation.kid}, not {kid.hex()}")
            entry = replace(entry, attestation=attestation)
        try:  # run the same checks as loading, so a bad station name fails here, not later
            entry = from_plain(TrustEntry, to_plain(entry))
        except DataFormError as exc:
            raise ConfigError(exc.problem, key_path=exc.key_path) from None
        self._entries[kid.hex()] = entry
        self._keys[kid] = self._materialise(kid.hex(), entry)
        if unrevoke and old is not None and old.revoked:
            log.warning("key %s un-revoked by %s", kid.hex(), by or "(unknown)")
        return kid

    def copy(self) -> TrustStore:
        """An independent store with the same entries (a batch's working copy)."""
        return TrustStore(self.path, self._entries)

    def record_rotation(
        self,
        *,
        old_kid: bytes,
        new_key: PublicKey,
        rotation_id: str,
        at: datetime,
        old_not_after: datetime,
        new_not_before: datetime | None = None,
        new_not_after: datetime | None = None,
    ) -> bytes:
        """Trust ``new_key`` for the old key's station and site and record the chain on both
        entries; the old key's validity ends at ``old_not_after`` (never later than it was).
        The caller has verified the statement; ConfigError if the old key is unknown."""
        old = self._entries.get(old_kid.hex())
        if old is None:
            raise ConfigError(f"no key {old_kid.hex()} in the trust store")
        new_kid = key_id(new_key)
        when = iso_utc(at)
        ends = old_not_after
        current_end = self._keys[old_kid].not_after
        if current_end is not None and current_end < ends:
            ends = current_end
        self._put(
            replace(
                old,
                not_after=iso_utc(ends),
                rotated_to=new_kid.hex(),
                rotated_at=when,
                rotation_id=rotation_id,
            ),
            old_kid.hex(),
        )
        entry = TrustEntry(
            public_key=public_key_pem_text(new_key),
            station=old.station,
            site=old.site,
            not_before=iso_utc(new_not_before) if new_not_before else None,
            not_after=iso_utc(new_not_after) if new_not_after else None,
            added=when,
            rotated_from=old_kid.hex(),
            rotated_at=when,
            rotation_id=rotation_id,
        )
        self._put(entry, new_kid.hex())
        return new_kid

    def _put(self, entry: TrustEntry, kid_hex: str) -> None:
        try:
            entry = from_plain(TrustEntry, to_plain(entry))
        except DataFormError as exc:
            raise ConfigError(exc.problem, key_path=exc.key_path) from None
        self._entries[kid_hex] = entry
        self._keys[bytes.fromhex(kid_hex)] = self._materialise(kid_hex, entry)

    def entry(self, kid_hex: str) -> TrustEntry | None:
        """The stored entry of a key id (revocation records included), or None."""
        return self._entries.get(kid_hex)

    def revoke(self, kid_hex: str) -> None:
        """Mark a key revoked (kept, so the decision is recorded); ConfigError if unknown."""
        entry = self._entries.get(kid_hex)
        if entry is None:
            raise ConfigError(f"no key {kid_hex} in the trust store", key_path=f"keys.{kid_hex}")
        self._entries[kid_hex] = replace(entry, revoked=True)
        self._keys[bytes.fromhex(kid_hex)] = replace(
            self._keys[bytes.fromhex(kid_hex)], revoked=True
        )

    def entries(self) -> list[TrustedKey]:
        """All keys, revoked ones included, sorted by kid."""
        return [self._keys[k] for k in sorted(self._keys)]

    def resolve(self, kid: bytes, *, at: datetime | None = None) -> TrustedKey:
        """The key for ``kid`` if trusted at ``at`` (default now); TrustStoreError otherwise."""
        key = self._keys.get(kid)
        if key is None:
            raise TrustStoreError("unknown_kid", f"kid {kid.hex()} is not in the trust store")
        return check_validity(key, at)

    def save(self) -> None:
        """Write atomically: temporary file, fsync, rename, fsync the directory."""
        plain = to_plain(TrustFile(keys=dict(sorted(self._entries.items()))))
        data = (json.dumps(plain, indent=2, sort_keys=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise ConfigError(
                f"cannot write trust store {self.path}: {exc.strerror or exc}"
            ) from None
        log.info("trust store %s saved (%d keys)", self.path, len(self._entries))


def operator_name() -> str:
    """Who runs this command (recorded with an un-revocation): $SUDO_USER or the login name."""
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (containers)
        return f"uid {os.getuid()}"


def _entry_time(text: str | None, key_path: str) -> datetime | None:
    """A stored time; the pattern admits 2026-13-45, so a calendar check makes it a ConfigError."""
    if not text:
        return None
    try:
        return parse_utc(text)
    except ValueError as exc:
        raise ConfigError(f"not a valid UTC time {text!r}: {exc}", key_path=key_path) from None


def public_key_pem_text(public: PublicKey) -> str:
    """PEM text of a public key, as stored in the trust file."""
    return public_key_pem(public).decode("ascii")


class StaticKeys:
    """A fixed kid -> public key map (tests, vectors, a single PEM given on the command line)."""

    def __init__(self, keys: Mapping[bytes, PublicKey]) -> None:
        self._keys = {kid: TrustedKey(kid=kid, public_key=key) for kid, key in keys.items()}

    @classmethod
    def of(cls, *public_keys: PublicKey) -> StaticKeys:
        """Keys indexed by their station key id."""
        return cls({key_id(k): k for k in public_keys})

    def resolve(self, kid: bytes, *, at: datetime | None = None) -> TrustedKey:
        """The key for ``kid``; TrustStoreError(unknown_kid) otherwise."""
        key = self._keys.get(kid)
        if key is None:
            raise TrustStoreError("unknown_kid", f"kid {kid.hex()} is not known")
        return key
