"""Decide one upstream event message: an ``EventRow`` to store, or a refusal with a reason.

The same checks as the gateway (``signing.events.verify_event``: tagged COSE_Sign1, allowed
algorithm, known, valid and unrevoked key, the key's station and site), plus the whole body
against the v1 model (``event_codec``) and the topic binding. Reasons are the gateway's
stable tokens (docs/run-a-gateway.md) plus ``station_mismatch``; the store adds ``conflict``
(an event id already stored with other bytes).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cbor2

from edge_agent.errors import VerificationError
from edge_agent.event_codec import event_to_plain
from edge_agent.gateway.routing import SiteTopic, parse_site_topic
from edge_agent.ingest.store import EventRow, EvidenceLink, RefusalRow
from edge_agent.model import IdentificationEvent
from edge_agent.plain_out import is_plain_form
from edge_agent.signing.events import verify_event
from edge_agent.signing.trust import TrustStore, iso_utc

# One encoder for every row (no set-up per call; a model's plain form has no cycles to check)
_BODY_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, check_circular=False)
_EVENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class Refused:
    """A refused message: stable ``reason``, ``detail`` for people, the claimed event id."""

    reason: str
    detail: str
    event_id: str | None = None


def check_event(
    topic: str,
    payload: bytes,
    trust: TrustStore,
    *,
    prefix: str,
    max_bytes: int,
    now: datetime | None = None,
    where: SiteTopic | None = None,
    received_utc: str | None = None,
) -> EventRow | Refused:
    """Verify and validate one message from an event topic (``where``: the topic, if parsed)."""
    now = now or datetime.now(UTC)
    if where is None:
        where = parse_site_topic(prefix, topic)
    if where is None or where.kind != "event":
        return Refused("bad_topic", topic[:200])
    if len(payload) > max_bytes:
        return Refused("oversized", f"{len(payload)} bytes")
    try:
        verified = verify_event(payload, trust, at=now)
    except VerificationError as exc:
        return Refused(exc.reason, exc.detail, claimed_event_id(payload))
    event = verified.event
    if (event.site, event.station) != (where.site, where.station):
        return Refused("topic_mismatch", f"event of {event.site}/{event.station}", event.event_id)
    return event_row(event, payload, received_utc or iso_utc(now), verified.body)


def event_row(
    event: IdentificationEvent,
    cose: bytes,
    received_utc: str,
    body: Mapping[str, Any] | None = None,
) -> EventRow:
    """The stored form of a verified event: query columns, exact bytes, the body as JSON
    (``body``: the map ``event`` was validated from, if at hand)."""
    return EventRow(
        event_id=event.event_id,
        site=event.site,
        station=event.station,
        kid=event.kid,
        boot_epoch=event.boot_epoch,
        seq=event.seq,
        event_utc=event.clock.utc,
        received_utc=received_utc,
        pack_code=event.pack.pack_code,
        vin=event.pack.vin,
        disposition=event.triage.disposition,
        transport_class=event.triage.transport_class,
        cose=cose,
        body_json=body_json(event, body),
        corrects=event.corrects,
        evidence=tuple(
            EvidenceLink(e.sha256, e.kind, e.media_type, e.size) for e in event.evidence
        ),
    )


def body_json(event: IdentificationEvent, body: Mapping[str, Any] | None = None) -> str:
    """The stored JSON of a verified body (sorted keys, UTF-8 text as is): that of
    ``to_plain(event)``, written straight from ``body`` (the map ``event`` was validated
    from) when that is already the same plain form."""
    if body is not None and is_plain_form(IdentificationEvent, body):
        return _BODY_JSON.encode(body)
    return _BODY_JSON.encode(event_to_plain(event))


def claimed_event_id(payload: bytes) -> str | None:
    """The event id an unverified message claims (for the receipt), if it can be read."""
    try:
        message = cbor2.CBORDecoder(io.BytesIO(payload)).decode()
        body = cbor2.loads(message.value[2])
        value = body.get("event_id")
    except Exception:  # anything malformed: no id to report
        return None
    return value if isinstance(value, str) and _EVENT_ID.fullmatch(value) else None


def refusal_row(topic: str, payload: bytes, refused: Refused, now: datetime) -> RefusalRow:
    """The stored form of a refusal."""
    return RefusalRow(
        received_utc=iso_utc(now),
        topic=topic[:300],
        reason=refused.reason,
        detail=refused.detail[:500],
        event_id=refused.event_id,
        payload_sha256=hashlib.sha256(payload).hexdigest(),
    )
