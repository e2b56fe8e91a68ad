"""Receipts: the gateway's signed answer to a station about its events (pure, no I/O).

A receipt is a tagged COSE_Sign1 made by the same code as events (``sign1``), signed with the
gateway's key, with the receipt topic as ``external_aad`` (a receipt copied onto another
station's topic does not verify). The payload is deterministic CBOR::

    {"v": 1, "type": "receipt", "site": "plant-a", "station": "st-01", "ts": 1764921600123,
     "items": [{"event_id": "...", "status": "accepted"},
               {"event_id": "...", "status": "rejected", "reason": "replay",
                "detail": "stale_epoch epoch=1 seq=4", "last": [7, 112]}]}

``last`` is the newest (boot_epoch, seq) the gateway accepted from the event's key, so a
station whose boot epoch went backwards knows where to continue. One receipt may list many
events of one station (the gateway sends one per station and batch).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import cbor2

from edge_agent.errors import VerificationError
from edge_agent.signing.cose import EVENT_POLICY, KeyResolver, VerifyPolicy, sign1, verify_sign1
from edge_agent.signing.signer import Signer

ReceiptStatus = Literal["accepted", "rejected"]

RECEIPT_POLICY = VerifyPolicy(
    name="receipt",
    require_tag=True,
    allowed_algs=EVENT_POLICY.allowed_algs,
    headers_protected=True,
    protected_labels=EVENT_POLICY.protected_labels,
    unprotected_labels=frozenset(),
    curves=EVENT_POLICY.curves,
    max_size=1024 * 1024,
    preferred_encoding=True,
)
MAX_ITEMS = 10_000
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_REASON = re.compile(r"[a-z_]{1,64}")
_MAX_INT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ReceiptItem:
    """The gateway's decision about one event."""

    event_id: str
    status: ReceiptStatus
    reason: str = ""
    detail: str = ""
    last: tuple[int, int] | None = None  # newest (epoch, seq) accepted from the event's key


@dataclass(frozen=True, slots=True)
class Receipt:
    """A verified (or to be signed) receipt for one station."""

    site: str
    station: str
    ts_ms: int
    items: tuple[ReceiptItem, ...]


def encode_receipt(receipt: Receipt) -> bytes:
    """Deterministic CBOR of the receipt body."""
    items: list[dict[str, Any]] = []
    for item in receipt.items:
        plain: dict[str, Any] = {"event_id": item.event_id, "status": item.status}
        if item.reason:
            plain["reason"] = item.reason
        if item.detail:
            plain["detail"] = item.detail[:200]
        if item.last is not None:
            plain["last"] = [item.last[0], item.last[1]]
        items.append(plain)
    body = {
        "v": 1,
        "type": "receipt",
        "site": receipt.site,
        "station": receipt.station,
        "ts": receipt.ts_ms,
        "items": items,
    }
    return cbor2.dumps(body, canonical=True)


def sign_receipt(receipt: Receipt, signer: Signer, *, topic: str) -> bytes:
    """The receipt as a tagged COSE_Sign1 bound to its topic."""
    return sign1(encode_receipt(receipt), signer, external_aad=topic.encode())


def verify_receipt(
    message: bytes, keys: KeyResolver, *, topic: str, at: datetime | None = None
) -> Receipt:
    """Verify signature, key and body; VerificationError with a stable reason otherwise."""
    verified = verify_sign1(
        message, keys, external_aad=topic.encode(), policy=RECEIPT_POLICY, at=at
    )
    return decode_receipt(verified.payload)


def decode_receipt(payload: bytes) -> Receipt:
    """Parse a receipt body strictly; VerificationError("bad_payload") otherwise."""
    stream = io.BytesIO(payload)
    try:
        body = cbor2.CBORDecoder(stream, allow_duplicate_keys=False).decode()
    except Exception as exc:  # cbor2 raises several unrelated types on bad input
        raise VerificationError("bad_payload", f"receipt is not CBOR: {exc}") from None
    if stream.tell() != len(payload):
        raise VerificationError("bad_payload", "bytes after the receipt body")
    if not isinstance(body, dict) or body.get("v") != 1 or body.get("type") != "receipt":
        raise VerificationError("bad_payload", "not a v1 receipt")
    items = body.get("items")
    if not isinstance(items, list) or not 0 < len(items) <= MAX_ITEMS:
        raise VerificationError("bad_payload", "items must be a non-empty list")
    return Receipt(
        site=_text(body.get("site"), _ID, "site"),
        station=_text(body.get("station"), _ID, "station"),
        ts_ms=_count(body.get("ts"), "ts"),
        items=tuple(_item(i) for i in items),
    )


def _item(plain: Any) -> ReceiptItem:
    if not isinstance(plain, dict):
        raise VerificationError("bad_payload", "receipt item must be a map")
    status = plain.get("status")
    if status not in ("accepted", "rejected"):
        raise VerificationError("bad_payload", "status must be accepted or rejected")
    reason = plain.get("reason", "")
    if reason != "" or status == "rejected":
        reason = _text(reason, _REASON, "reason")
    detail = plain.get("detail", "")
    if not isinstance(detail, str) or len(detail) > 200:
        raise VerificationError("bad_payload", "detail must be text of at most 200 chars")
    last = plain.get("last")
    parsed: tuple[int, int] | None = None
    if last is not None:
        if not isinstance(last, list) or len(last) != 2:
            raise VerificationError("bad_payload", "last must be [epoch, seq]")
        parsed = (_count(last[0], "last.epoch"), _count(last[1], "last.seq"))
    return ReceiptItem(
        event_id=_text(plain.get("event_id"), _EVENT_ID, "event_id"),
        status=status,
        reason=reason,
        detail=detail,
        last=parsed,
    )


def _text(value: Any, rx: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not rx.fullmatch(value):
        raise VerificationError("bad_payload", f"{what} missing or malformed")
    return value


def _count(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_INT:
        raise VerificationError("bad_payload", f"{what} must be an integer 0..2^63-1")
    return value
