"""Key rotation statements at the gateway: decide one, record accepted ones in the trust store.

A statement on ``<prefix>/<site>/<station>/key`` is accepted when the old key is trusted now
for that station and site (not unknown, revoked, expired), both signatures verify
(``signing.rotation.verify_rotation``), the old key has not rotated before and the new key is
not already in the store. The new key is then trusted for the old key's station and site, the
old key stays valid for the overlap (counted from now, capped by ``max_overlap_s`` and never
past its own ``not_after``), and both entries record the chain.

Reasons beyond the verifier's: ``topic_mismatch``, ``duplicate`` (this statement was accepted
before: answered ``accepted`` again, changes nothing), ``already_rotated`` (the old key
already handed over to another key: a copied old key cannot fork the chain),
``key_in_use`` (the new key is already trusted).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_agent.errors import ConfigError, VerificationError
from edge_agent.gateway.routing import SiteTopic
from edge_agent.signing.rotation import KeyRotation, verify_rotation
from edge_agent.signing.trust import TrustedKey, TrustStore


@dataclass(frozen=True, slots=True)
class AcceptedRotation:
    """A verified statement and when the gateway accepted it."""

    rotation: KeyRotation
    at: datetime


def check_rotation(
    message: bytes, trust: TrustStore, *, topic: SiteTopic, at: datetime
) -> AcceptedRotation:
    """Verify one statement that came on ``topic`` against ``trust``; VerificationError with a
    stable reason otherwise (the ingest checks upstream copies the same way)."""
    verified = verify_rotation(message, trust, site=topic.site, station=topic.station, at=at)
    rotation, key = verified.rotation, verified.key
    assert isinstance(key, TrustedKey)
    where = (topic.site, topic.station)
    if (key.site, key.station) != where:
        raise VerificationError("topic_mismatch", f"key of {key.site}/{key.station}")
    if (rotation.site, rotation.station) != where:
        raise VerificationError(
            "topic_mismatch", f"statement of {rotation.site}/{rotation.station}"
        )
    old_hex, new_hex = rotation.old_kid.hex(), rotation.new_kid.hex()
    old = trust.entry(old_hex)
    assert old is not None  # it resolved above
    if old.rotated_to is not None:
        if old.rotated_to == new_hex and old.rotation_id == rotation.rotation_id:
            raise VerificationError("duplicate", f"rotation {rotation.rotation_id}")
        raise VerificationError(
            "already_rotated", f"kid {old_hex} rotated to {old.rotated_to} at {old.rotated_at}"
        )
    if trust.entry(new_hex) is not None:
        raise VerificationError("key_in_use", f"kid {new_hex} is already in the trust store")
    return AcceptedRotation(rotation, at)


def apply_rotation(trust: TrustStore, accepted: AcceptedRotation, *, max_overlap_s: int) -> None:
    """Record an accepted statement in ``trust`` (in memory)."""
    rotation = accepted.rotation
    overlap = min(rotation.overlap_s, max_overlap_s)
    trust.record_rotation(
        old_kid=rotation.old_kid,
        new_key=rotation.new_key,
        rotation_id=rotation.rotation_id,
        at=accepted.at,
        old_not_after=accepted.at + timedelta(seconds=overlap),
        new_not_before=_ms(rotation.not_before_ms),
        new_not_after=_ms(rotation.not_after_ms),
    )


def persist_rotations(
    path: Path, rotations: list[AcceptedRotation], *, max_overlap_s: int
) -> TrustStore:
    """Apply ``rotations`` to the trust store FILE (read, apply, write under its lock, so an
    operator's ``trust revoke`` at the same moment is not lost); returns the stored state."""
    with trust_file_lock(path):
        store = TrustStore.load(path)
        for accepted in rotations:
            old = store.entry(accepted.rotation.old_kid.hex())
            if old is None or old.rotated_to is not None:
                continue  # applied already (a batch retried after its trust commit)
            apply_rotation(store, accepted, max_overlap_s=max_overlap_s)
        store.save()
    return store


@contextlib.contextmanager
def trust_file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock beside the trust store (``<name>.lock``) for read-modify-write."""
    lock = path.with_name(f".{path.name}.lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot lock trust store {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _ms(value: int | None) -> datetime | None:
    if value is None:
        return None
    # far-future ms (up to 2^63) do not fit a datetime: clamp to the last representable second
    return datetime.fromtimestamp(min(value / 1000, 253402300799), UTC)
