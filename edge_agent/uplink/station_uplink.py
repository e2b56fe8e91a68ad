"""Assemble a station's uplink: outbox file, topics, client id, birth/Will, publisher."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from edge_agent.uplink.metrics import UplinkMetrics
from edge_agent.uplink.mqtt import status_messages
from edge_agent.uplink.outbox import Outbox, outbox_path
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.receipts import ReceiptListener, receipts_trust
from edge_agent.uplink.settings import UplinkSettings
from edge_agent.uplink.topics import ReceiptTopics, StationTopics


@dataclass(frozen=True)
class StationUplink:
    """What a station needs to publish: the publisher (owns the outbox) and its topic names."""

    publisher: OutboxPublisher
    topics: StationTopics
    receipts: ReceiptListener | None = None

    @property
    def outbox(self) -> Outbox:
        """The durable outbox behind the publisher."""
        return self.publisher.outbox


def station_uplink(
    *,
    site: str,
    station: str,
    data_dir: Path,
    settings: UplinkSettings,
    registry: CollectorRegistry | None = None,
) -> StationUplink:
    """Open the outbox (moving a corrupt one aside) and build a not yet started publisher."""
    topics = StationTopics(site, station, prefix=settings.mqtt.topic_prefix)
    client_id = settings.mqtt.client_id or f"edge-agent-{topics.site}-{topics.station}"
    trust = None
    if settings.receipts_required:
        trust = receipts_trust(
            settings.receipts_trust, setting="uplink.receipts", key_path="uplink.receipts_trust"
        )
    outbox = Outbox(
        outbox_path(settings.outbox, data_dir),
        settings.outbox,
        receipts=trust is not None,
        receipt_timeout_s=settings.receipt_timeout_s,
    )
    metrics = UplinkMetrics(registry) if registry is not None else None
    listener = None
    if trust is not None:
        listener = ReceiptListener(
            outbox,
            trust,
            topics=ReceiptTopics(topics.prefix, site=topics.site, station=topics.station),
            registry=metrics.registry if metrics is not None else None,
        )
    publisher = OutboxPublisher(
        outbox,
        settings.mqtt,
        client_id=client_id,
        status=status_messages(topics.status, client_id),
        metrics=metrics,
        subscriptions=[topics.receipt] if listener is not None else (),
        on_message=listener.handle if listener is not None else None,
    )
    if listener is not None:
        listener.on_due = publisher.rescan
    return StationUplink(publisher=publisher, topics=topics, receipts=listener)
