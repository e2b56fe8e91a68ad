"""Receipts to the stations: after a batch is committed, one signed receipt per station.

Called once per batch from the pipeline, after the outbox and state commits: every event
accepted (or found already accepted: a duplicate is answered ``accepted`` again) and every
event rejected gets an item, with the newest (epoch, seq) the gateway accepted from its key.
Receipts go on the site broker, QoS 1, to ``<prefix>/<site>/<station>/receipt``; a receipt
lost on the way is harmless: the station sends the event again after its receipt timeout and
gets the same answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import cbor2
from prometheus_client import CollectorRegistry, Counter

from edge_agent.gateway.admission import Forward, Reject
from edge_agent.gateway.routing import parse_site_topic, receipt_topic
from edge_agent.gateway.state import GatewayState
from edge_agent.signing.receipts import Receipt, ReceiptItem, sign_receipt
from edge_agent.signing.rotation import peek_rotation_id
from edge_agent.signing.signer import Signer

log = logging.getLogger("edge_agent.gateway.receipts")

Publish = Callable[[str, bytes], None]
# Rejections that mean "this event is already accepted": answered as accepted again.
_ALREADY_ACCEPTED = {"duplicate"}


class ReceiptSender:
    """Builds, signs and publishes the receipts of one batch."""

    def __init__(
        self,
        signer: Signer,
        *,
        prefix: str,
        state: GatewayState,
        publish: Publish,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._signer = signer
        self._prefix = prefix
        self._state = state
        self._publish = publish
        r: Any = registry if registry is not None else CollectorRegistry()
        self.sent = Counter(
            "gateway_receipts", "receipt items sent to stations, by status", ["status"], registry=r
        )
        self.messages = Counter(
            "gateway_receipt_messages", "signed receipt messages published", registry=r
        )

    def send(
        self, forwards: Sequence[Forward], rejects: Sequence[tuple[str, bytes, Reject]]
    ) -> None:
        """Publish the receipts for a committed batch (``rejects``: topic, payload, decision)."""
        by_station: dict[tuple[str, str], list[ReceiptItem]] = {}
        windows: dict[str, tuple[int, int] | None] = {}
        for f in forwards:
            if f.kind == "event":
                item = ReceiptItem(f.event_id, "accepted", last=self._last(f.kid, windows))
                by_station.setdefault((f.site, f.station), []).append(item)
            elif f.kind == "key":  # a rotation statement: its rotation_id is the outbox key
                by_station.setdefault((f.site, f.station), []).append(
                    ReceiptItem(f.event_id, "accepted")
                )
        for topic, payload, rej in rejects:
            site_topic = parse_site_topic(self._prefix, topic)
            if site_topic is None or site_topic.kind == "evidence":
                continue  # evidence is settled with its event; bad topics have no station
            if site_topic.kind == "key":
                rotation_id = peek_rotation_id(payload)
                if rotation_id is not None:
                    if rej.reason in _ALREADY_ACCEPTED:
                        item = ReceiptItem(rotation_id, "accepted")
                    else:
                        item = ReceiptItem(rotation_id, "rejected", rej.reason, rej.detail)
                    by_station.setdefault((site_topic.site, site_topic.station), []).append(item)
                continue
            peeked = peek_event(payload)
            if peeked is None:
                continue  # nothing the station could match the answer to
            event_id, kid = peeked
            # only after verification is the kid the sender's own (replay, duplicate)
            verified = rej.reason in _ALREADY_ACCEPTED or rej.reason == "replay"
            last = self._last(kid, windows) if kid and verified else None
            if rej.reason in _ALREADY_ACCEPTED:
                item = ReceiptItem(event_id, "accepted", last=last)
            else:
                item = ReceiptItem(event_id, "rejected", rej.reason, rej.detail, last)
            by_station.setdefault((site_topic.site, site_topic.station), []).append(item)
        now_ms = int(time.time() * 1000)
        for (site, station), items in by_station.items():
            topic = receipt_topic(self._prefix, site, station)
            message = sign_receipt(
                Receipt(site, station, now_ms, tuple(items)), self._signer, topic=topic
            )
            try:
                self._publish(topic, message)
            except Exception:  # the station re-sends after its timeout and asks again
                log.exception("receipt to %s/%s not published", site, station)
                continue
            self.messages.inc()
            accepted = sum(1 for i in items if i.status == "accepted")
            if accepted:
                self.sent.labels(status="accepted").inc(accepted)
            if len(items) > accepted:
                self.sent.labels(status="rejected").inc(len(items) - accepted)

    def _last(self, kid: str, cache: dict[str, tuple[int, int] | None]) -> tuple[int, int] | None:
        if kid not in cache:
            window = self._state.window(kid)
            cache[kid] = (window.epoch, window.top) if window.epoch >= 0 else None
        return cache[kid]


def peek_event(message: bytes) -> tuple[str, str] | None:
    """(event_id, kid hex) read from an event WITHOUT verifying it, or None.

    Only used to address a rejection to the row the station holds; the station acts on it
    only after verifying the gateway's signature on the receipt.
    """
    try:
        outer = cbor2.loads(message)
        value = outer.value if isinstance(outer, cbor2.CBORTag) else outer
        if (
            not isinstance(value, list | tuple)
            or len(value) != 4
            or not isinstance(value[2], bytes)
        ):
            return None
        body = cbor2.loads(value[2])
    except Exception:  # any garbage: nothing to answer
        return None
    if not isinstance(body, dict):
        return None
    event_id, kid = body.get("event_id"), body.get("kid", "")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 128:
        return None
    if not isinstance(kid, str) or len(kid) != 32:
        kid = ""
    return event_id, kid
