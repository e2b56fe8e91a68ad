"""Key rotation statements forwarded by the gateways: the backend learns the chain too.

A statement arriving on ``<prefix>/<site>/<station>/key`` is checked exactly as the gateway
checks it (``gateway/rotations.py``: the old key trusted for that station, both signatures,
accepted once, no fork, a new key not in use) against the ingest's own trust store, and an
accepted one is recorded there (under the file's lock), so the new key's events verify here
as well. The answer goes back in the ingest's receipt under the statement's ``rotation_id``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edge_agent.errors import EdgeAgentError, VerificationError
from edge_agent.gateway.rotations import check_rotation, persist_rotations
from edge_agent.gateway.routing import SiteTopic
from edge_agent.ingest.acks import Answer
from edge_agent.ingest.check import Refused
from edge_agent.signing.rotation import MAX_OVERLAP_S, peek_rotation_id
from edge_agent.signing.trust import TrustStore

log = logging.getLogger("edge_agent.ingest.rotations")


@dataclass(frozen=True, slots=True)
class StatementOutcome:
    """The trust store after the statement, the answer for the gateway, a refusal if any."""

    trust: TrustStore
    answer: Answer | None
    refused: Refused | None


def take_statement(
    payload: bytes,
    where: SiteTopic,
    trust: TrustStore,
    *,
    path: Path,
    max_bytes: int,
    now: datetime,
) -> StatementOutcome:
    """Check one statement and record it in the trust store file when accepted."""
    rotation_id = peek_rotation_id(payload)
    if len(payload) > max_bytes:
        return _refuse(trust, where, rotation_id, "oversized", f"{len(payload)} bytes")
    try:
        accepted = check_rotation(payload, trust, topic=where, at=now)
    except VerificationError as exc:
        if exc.reason == "duplicate":  # recorded before: the same answer again
            return StatementOutcome(
                trust, _answer(where, rotation_id, "accepted", "duplicate"), None
            )
        return _refuse(trust, where, rotation_id, exc.reason, exc.detail)
    try:
        # the overlap the gateway granted is not known here: the statement's own, capped
        trust = persist_rotations(path, [accepted], max_overlap_s=MAX_OVERLAP_S)
    except EdgeAgentError as exc:
        return _refuse(trust, where, rotation_id, "internal", str(exc))
    rotation = accepted.rotation
    log.warning(
        "key %s of %s/%s rotated to %s",
        rotation.old_kid.hex(),
        where.site,
        where.station,
        rotation.new_kid.hex(),
        extra={"rotation_id": rotation.rotation_id},
    )
    return StatementOutcome(trust, _answer(where, rotation.rotation_id, "accepted", "stored"), None)


def _refuse(
    trust: TrustStore, where: SiteTopic, rotation_id: str | None, reason: str, detail: str
) -> StatementOutcome:
    log.warning("key rotation statement refused", extra={"reason": reason, "detail": detail})
    return StatementOutcome(
        trust,
        _answer(where, rotation_id, "rejected", reason),
        Refused(reason, detail, rotation_id),
    )


def _answer(where: SiteTopic, rotation_id: str | None, status: str, reason: str) -> Answer | None:
    if rotation_id is None:
        return None
    return Answer(where.site, where.station, rotation_id, status, reason)  # type: ignore[arg-type]
