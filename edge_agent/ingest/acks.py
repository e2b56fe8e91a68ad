"""Signed receipts from the ingest to the gateway: the one place that builds and sends them.

A receipt is a tagged COSE_Sign1 (``signing.cose.sign1``, the ingest's own key) over the
deterministic CBOR map ``{"event_id": str, "status": "accepted" | "refused", "reason": str}``,
published with QoS 1 on ``<prefix>/<site>/<station>/receipt/upstream``. ``accepted`` covers a
newly stored event and a duplicate of a stored one (reason ``stored`` or ``duplicate``).

The gateway->station receipt format is being built in parallel (module gateway/receipts.py);
this module is meant to be replaced by a call into it at merge, keeping this signature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from edge_agent.event_codec import encode_plain
from edge_agent.signing.cose import sign1
from edge_agent.signing.signer import Signer

ReceiptStatus = Literal["accepted", "refused"]
Publish = Callable[[str, bytes, int], Any]  # (topic, payload, qos)


def receipt_topic(prefix: str, site: str, station: str) -> str:
    """Where the gateway of ``site`` reads the ingest's receipts for ``station``'s events."""
    return f"{prefix}/{site}/{station}/receipt/upstream"


def receipt_bytes(signer: Signer, *, event_id: str, status: ReceiptStatus, reason: str) -> bytes:
    """The signed receipt."""
    body = {"event_id": event_id, "status": status, "reason": reason}
    return sign1(encode_plain(body), signer)


def publish_receipt(
    publish: Publish,
    signer: Signer,
    *,
    prefix: str,
    site: str,
    station: str,
    event_id: str,
    status: ReceiptStatus,
    reason: str,
) -> bytes:
    """Sign and publish one receipt (QoS 1); the bytes sent."""
    message = receipt_bytes(signer, event_id=event_id, status=status, reason=reason)
    publish(receipt_topic(prefix, site, station), message, 1)
    return message
