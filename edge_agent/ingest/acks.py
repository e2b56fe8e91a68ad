"""Signed receipts from the ingest to the gateway, in the one receipt format.

The same body, signature and topic binding as the gateway's receipts to its stations
(``signing/receipts.py``): a tagged COSE_Sign1 made with the ingest's own key, the topic as
external AAD, one receipt per station and batch, published with QoS 1 on
``<prefix>/<site>/<station>/receipt/upstream``. ``accepted`` covers a newly stored event
(reason ``stored``) and a duplicate of a stored one (``duplicate``); ``rejected`` carries the
refusal token as its reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from edge_agent.signing.receipts import Receipt, ReceiptItem, ReceiptStatus, sign_receipt
from edge_agent.signing.signer import Signer

Publish = Callable[..., Any]  # publish(topic, payload, qos=1)


@dataclass(frozen=True, slots=True)
class Answer:
    """The ingest's answer for one event."""

    site: str
    station: str
    event_id: str
    status: ReceiptStatus
    reason: str


def receipt_topic(prefix: str, site: str, station: str) -> str:
    """Where the gateway of ``site`` reads the ingest's receipts for ``station``'s events."""
    return f"{prefix}/{site}/{station}/receipt/upstream"


def publish_receipts(
    publish: Publish, signer: Signer, *, prefix: str, answers: Iterable[Answer]
) -> list[bytes]:
    """Sign and publish (QoS 1) one receipt per station of a committed batch; the bytes sent."""
    by_station: dict[tuple[str, str], list[ReceiptItem]] = {}
    for a in answers:
        item = ReceiptItem(a.event_id, a.status, reason=a.reason)
        by_station.setdefault((a.site, a.station), []).append(item)
    sent: list[bytes] = []
    now_ms = int(time.time() * 1000)
    for (site, station), items in by_station.items():
        topic = receipt_topic(prefix, site, station)
        message = sign_receipt(Receipt(site, station, now_ms, tuple(items)), signer, topic=topic)
        publish(topic, message, qos=1)
        sent.append(message)
    return sent
