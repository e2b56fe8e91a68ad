"""The gateway's upstream side: its outbox, the forwarder and the ingest's receipts.

Without upstream receipts a forwarded row leaves the outbox on the upstream broker's PUBACK.
With them (``gateway.upstream_receipts``, required when ``upstream_receipts_trust`` names the
ingest's keys) the PUBACK only marks the row ``sent``; the ingest's signed receipt on
``<upstream_prefix>/<site>/<station>/receipt/upstream`` deletes it (``accepted``) or keeps it
``rejected`` with the reason until an operator retries it (``edge-agent outbox --path
<gateway outbox> retry ID``); a ``sent`` row without a receipt for
``upstream_receipt_timeout_s`` is sent again. The listener is the station's
(``uplink/receipts.py``), reading every station's topic of the ingest instead of one.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.gateway.metrics import GatewayMetrics
from edge_agent.gateway.settings import GatewaySettings
from edge_agent.signing.trust import TrustStore
from edge_agent.uplink.outbox import Outbox
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.receipts import ReceiptListener, receipts_trust
from edge_agent.uplink.topics import ReceiptTopics

UPSTREAM_KEY = "gateway.upstream_mqtt"  # config section named in configuration errors
RECEIPT_SUFFIX = "receipt/upstream"  # the ingest's topic level after <site>/<station>


@dataclass(frozen=True)
class Upstream:
    """The forwarder (owns the outbox) and, with upstream receipts, their listener."""

    publisher: OutboxPublisher
    receipts: ReceiptListener | None

    @property
    def outbox(self) -> Outbox:
        """The gateway's outbox of accepted messages waiting to go upstream."""
        return self.publisher.outbox


def receipt_topics(settings: GatewaySettings) -> ReceiptTopics:
    """Every station's ingest receipt topic under ``upstream_prefix``."""
    return ReceiptTopics(settings.upstream_prefix, suffix=RECEIPT_SUFFIX)


def upstream_trust(settings: GatewaySettings) -> TrustStore | None:
    """The ingest's receipt keys when upstream receipts are required (else None); ConfigError
    when their trust store is unset, missing or empty."""
    if not settings.upstream_receipts_required:
        return None
    return receipts_trust(
        settings.upstream_receipts_trust,
        setting="gateway.upstream_receipts",
        key_path="gateway.upstream_receipts_trust",
        signer="ingest",
    )


def open_upstream(
    settings: GatewaySettings, metrics: GatewayMetrics, *, trust: TrustStore | None
) -> Upstream:
    """Open the outbox and build the (not yet started) forwarder; with ``trust`` (the
    ingest's keys, from ``upstream_trust``) rows wait for the ingest's receipts."""
    outbox = Outbox(
        settings.outbox_path,
        settings.outbox,
        receipts=trust is not None,
        receipt_timeout_s=settings.upstream_receipt_timeout_s,
    )
    listener = None
    if trust is not None:
        listener = ReceiptListener(
            outbox,
            trust,
            topics=receipt_topics(settings),
            sender="ingest",
            resigns=False,
            registry=metrics.registry,
            prefix="gateway_upstream",
        )
    upstream = settings.upstream_mqtt
    publisher = OutboxPublisher(
        outbox,
        upstream,
        client_id=upstream.client_id or f"{settings.site_mqtt.client_id}-upstream",
        metrics=metrics.upstream,
        config_key=UPSTREAM_KEY,
        # Delete PUBACKed rows in groups of up to ~20 ms instead of one transaction per
        # drainer step: a crash in between only re-sends rows (at-least-once either way).
        ack_batch=256,
        ack_flush_s=0.02,
        subscriptions=[listener.topics.filter] if listener is not None else (),
        on_message=listener.handle if listener is not None else None,
    )
    if listener is not None:
        listener.on_due = publisher.rescan
    return Upstream(publisher=publisher, receipts=listener)
