"""Receiving side of receipts: verify signed receipts and settle the outbox rows they name.

Two users, one code: the station reads the gateway's receipts on its own receipt topic
(keys of ``uplink.receipts_trust``), the gateway reads the ingest's on
``<upstream_prefix>/+/+/receipt/upstream`` (keys of ``gateway.upstream_receipts_trust``).
Runs on paho's thread (``MqttLink(on_message=...)``): the receipt is verified with its topic
as external AAD, its site and station must be the topic's, and the outbox is updated (one
transaction) before the PUBACK goes back. Unsigned, foreign (another key, another station's
topic) or malformed receipts change nothing: they are logged and counted in
``<prefix>_receipts_ignored_total{reason}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from edge_agent.errors import ConfigError, EdgeAgentError, VerificationError
from edge_agent.signing.cose import KeyResolver
from edge_agent.signing.receipts import Receipt, ReceiptItem, verify_receipt
from edge_agent.signing.trust import TrustStore
from edge_agent.uplink.outbox import Outbox
from edge_agent.uplink.topics import ReceiptTopics

log = logging.getLogger("edge_agent.uplink.receipts")

# Called for a "replay" rejection (the station's boot epoch went backwards); True when the
# event was re-signed and is due again.
ReplayHandler = Callable[[ReceiptItem], bool]


class ReceiptListener:
    """Applies verified receipts on the topics of ``topics`` to an outbox."""

    def __init__(
        self,
        outbox: Outbox,
        keys: KeyResolver,
        *,
        topics: ReceiptTopics,
        sender: str = "gateway",
        resigns: bool = True,
        registry: CollectorRegistry | None = None,
        prefix: str = "edge_agent_uplink",
    ) -> None:
        """``sender`` names who signs the receipts in log lines ("gateway", "ingest");
        ``resigns``: the outbox's owner can re-sign events rejected as replays (the station),
        which ``<prefix>_recovered_total`` counts."""
        self.outbox = outbox
        self.keys = keys
        self.topics = topics
        self.sender = sender
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
        self.recovered: Counter | None = None
        if resigns:
            self.recovered = Counter(
                f"{prefix}_recovered", "events re-signed after a replay", registry=r
            )

    def handle(self, topic: str, payload: bytes, retain: bool) -> None:
        """One message from the broker (never raises for bad input: it is counted instead)."""
        where = self.topics.parse(topic)
        if where is None:
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
        if (receipt.site, receipt.station) != where:
            self._ignore(
                "wrong_station", f"receipt for {receipt.site}/{receipt.station} on {topic!r}"
            )
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
                    "%s rejected event %s: %s %s",
                    self.sender,
                    item.event_id,
                    item.reason,
                    item.detail,
                    extra={
                        "event_id": item.event_id,
                        "reason": item.reason,
                        "site": receipt.site,
                        "station": receipt.station,
                    },
                )
                if item.reason == "replay" and self.on_replay is not None:
                    try:
                        if self.on_replay(item):
                            if self.recovered is not None:
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


def receipts_trust(
    path: Path | None, *, setting: str, key_path: str, signer: str = "gateway"
) -> TrustStore:
    """The keys of ``signer`` whose receipts count, for ``setting = "required"``; ConfigError
    naming ``key_path`` when the store is unset, missing, invalid or empty (a listener without
    keys would keep every row forever)."""
    if path is None:
        raise ConfigError(
            f'no trust store of {signer} keys, which {setting} = "required" needs',
            key_path=key_path,
        )
    path = path.expanduser()
    if not path.is_file():
        raise ConfigError(f"receipts trust store {path} does not exist", key_path=key_path)
    store = TrustStore.load(path)
    if not store.entries():
        raise ConfigError(f"receipts trust store {path} holds no {signer} key", key_path=key_path)
    return store
