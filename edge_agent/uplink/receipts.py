"""Station side of receipts: verify the gateway's signed receipts and settle the outbox rows.

Runs on paho's thread (``MqttLink(on_message=...)``): the receipt is verified against the
gateway keys of ``uplink.receipts_trust`` and the outbox updated (one transaction) before the
PUBACK goes back. Unsigned, foreign (another key, another station's topic) or malformed
receipts change nothing: they are logged and counted in
``edge_agent_uplink_receipts_ignored_total{reason}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from edge_agent.errors import EdgeAgentError, VerificationError
from edge_agent.signing.cose import KeyResolver
from edge_agent.signing.receipts import Receipt, ReceiptItem, verify_receipt
from edge_agent.uplink.outbox import Outbox

log = logging.getLogger("edge_agent.uplink.receipts")

# Called for a "replay" rejection (the station's boot epoch went backwards); True when the
# event was re-signed and is due again.
ReplayHandler = Callable[[ReceiptItem], bool]


class ReceiptListener:
    """Applies verified receipts for one station's topic to its outbox."""

    def __init__(
        self,
        outbox: Outbox,
        keys: KeyResolver,
        *,
        topic: str,
        site: str,
        station: str,
        registry: CollectorRegistry | None = None,
        prefix: str = "edge_agent_uplink",
    ) -> None:
        self.outbox = outbox
        self.keys = keys
        self.topic = topic
        self.site = site
        self.station = station
        #: set by the station: re-sign events rejected as replays (see station/recovery.py)
        self.on_replay: ReplayHandler | None = None
        #: called after rows became due again (the publisher rescans)
        self.on_due: Callable[[], None] | None = None
        #: called (paho thread) with each receipt once applied: views, benchmarks
        self.on_applied: Callable[[Receipt], None] | None = None
        #: called with each verified receipt BEFORE it settles the outbox (the key switch of a
        #: rotation: its statement's row stays until the switch is done); raising keeps the
        #: receipt unapplied and unacknowledged
        self.before_apply: Callable[[Receipt], None] | None = None
        r: Any = registry if registry is not None else CollectorRegistry()
        self.items = Counter(
            f"{prefix}_receipts", "receipt items applied, by status", ["status"], registry=r
        )
        self.ignored = Counter(
            f"{prefix}_receipts_ignored",
            "receipts ignored (unsigned, foreign key, wrong topic or malformed), by reason",
            ["reason"],
            registry=r,
        )
        self.recovered = Counter(
            f"{prefix}_recovered", "events re-signed after a replay", registry=r
        )

    def handle(self, topic: str, payload: bytes, retain: bool) -> None:
        """One message from the broker (never raises for bad input: it is counted instead)."""
        if topic != self.topic:
            self._ignore("wrong_topic", f"receipt on {topic!r}")
            return
        try:
            receipt = verify_receipt(payload, self.keys, topic=topic)
        except VerificationError as exc:
            self._ignore(exc.reason, exc.detail)
            return
        except EdgeAgentError as exc:  # e.g. a trust store lookup error
            self._ignore(getattr(exc, "reason", "untrusted"), str(exc))
            return
        if (receipt.site, receipt.station) != (self.site, self.station):
            self._ignore("wrong_station", f"receipt for {receipt.site}/{receipt.station}")
            return
        if self.before_apply is not None:
            self.before_apply(receipt)
        # storage errors propagate: no PUBACK, the broker delivers the receipt again
        self.outbox.apply_receipt([(i.event_id, i.status, i.reason or None) for i in receipt.items])
        due = False
        for item in receipt.items:
            self.items.labels(status=item.status).inc()
            if item.status == "rejected":
                log.warning(
                    "gateway rejected event %s: %s %s",
                    item.event_id,
                    item.reason,
                    item.detail,
                    extra={"event_id": item.event_id, "reason": item.reason},
                )
                if item.reason == "replay" and self.on_replay is not None:
                    try:
                        if self.on_replay(item):
                            self.recovered.inc()
                            due = True
                    except Exception:  # keep the row rejected, visible to a person
                        log.exception("re-signing %s after a replay failed", item.event_id)
        if due and self.on_due is not None:
            self.on_due()
        if self.on_applied is not None:
            self.on_applied(receipt)

    def _ignore(self, reason: str, detail: str) -> None:
        self.ignored.labels(reason=reason).inc()
        log.warning("receipt ignored (%s): %s", reason, detail[:200])
