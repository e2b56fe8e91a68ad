"""Verify a station event and pull out the fields the gateway routes on.

The COSE_Sign1 envelope, the signature and the key's validity are always checked. The body
is checked either fully against the v1 event model (``full=True``, what ``verify_event`` does)
or only in the fields the gateway acts on (ids, boot epoch, sequence, evidence hashes): the
full check costs about three times the signature check in Python and the backend validates
the body again anyway.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cbor2

from edge_agent.errors import VerificationError
from edge_agent.event_codec import EventFormatError, decode_event
from edge_agent.signing.cose import EVENT_POLICY, verify_sign1
from edge_agent.signing.trust import TrustedKey, TrustStore

_EVENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KID = re.compile(r"[0-9a-f]{32}")
_MAX_INT = 2**63 - 1
_MAX_EVIDENCE = 8


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What the gateway needs from a verified event."""

    event_id: str
    site: str
    station: str
    kid: str
    boot_epoch: int
    seq: int
    evidence: tuple[str, ...]  # sha256 hex of each evidence item
    key: TrustedKey


def verify_facts(message: bytes, trust: TrustStore, *, at: datetime, full: bool) -> EventFacts:
    """Verify envelope, key and body; VerificationError with a stable reason otherwise."""
    verified = verify_sign1(message, trust, policy=EVENT_POLICY, at=at)
    key = verified.key
    assert isinstance(key, TrustedKey)
    kid_hex = verified.kid.hex()
    if full:
        try:
            event = decode_event(verified.payload)
        except EventFormatError as exc:
            raise VerificationError("bad_payload", str(exc)) from None
        facts = EventFacts(
            event.event_id,
            event.site,
            event.station,
            event.kid,
            event.boot_epoch,
            event.seq,
            tuple(e.sha256 for e in event.evidence),
            key,
        )
    else:
        facts = _routing_facts(verified.payload, key)
    if facts.kid != kid_hex:
        raise VerificationError("kid_mismatch", f"body kid {facts.kid}, signed with {kid_hex}")
    return facts


def _routing_facts(payload: bytes, key: TrustedKey) -> EventFacts:
    stream = io.BytesIO(payload)
    try:
        # Duplicate keys would let the backend read other values than the gateway checked.
        body = cbor2.CBORDecoder(stream, allow_duplicate_keys=False).decode()
    except Exception as exc:  # cbor2 raises several unrelated types on bad input
        raise VerificationError("bad_payload", f"body is not CBOR: {exc}") from None
    if stream.tell() != len(payload):
        raise VerificationError(
            "bad_payload", f"{len(payload) - stream.tell()} bytes after the body"
        )
    if not isinstance(body, dict) or body.get("v") != 1:
        raise VerificationError("bad_payload", "body is not a v1 event map")
    evidence = body.get("evidence", [])
    if not isinstance(evidence, list) or len(evidence) > _MAX_EVIDENCE:
        raise VerificationError("bad_payload", "evidence must be a list of at most 8 items")
    hashes = tuple(
        _text(item.get("sha256") if isinstance(item, dict) else None, _SHA256, "evidence.sha256")
        for item in evidence
    )
    return EventFacts(
        _text(body.get("event_id"), _EVENT_ID, "event_id"),
        _text(body.get("site"), _ID, "site"),
        _text(body.get("station"), _ID, "station"),
        _text(body.get("kid"), _KID, "kid"),
        _count(body.get("boot_epoch"), "boot_epoch"),
        _count(body.get("seq"), "seq"),
        hashes,
        key,
    )


def _text(value: Any, rx: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not rx.fullmatch(value):
        raise VerificationError("bad_payload", f"{what} missing or malformed")
    return value


def _count(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_INT:
        raise VerificationError("bad_payload", f"{what} must be an integer 0..2^63-1")
    return value
