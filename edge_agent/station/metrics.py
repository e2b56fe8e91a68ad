"""Prometheus metrics of a station: identifications, source failures, outbox, publish latency."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from edge_agent.station.workflow import IdentificationResult


@dataclass
class StationMetrics:
    """The station's metrics in their own registry (tests create as many as they like)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.identifications = Counter(
            "edge_agent_identifications",
            "Identifications run",
            ["transport_class", "disposition"],
            registry=r,
        )
        self.source_failures = Counter(
            "edge_agent_source_failures",
            "Sources that failed or were absent",
            ["source"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "edge_agent_outbox_depth", "Events waiting for PUBACK", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "edge_agent_outbox_oldest_age_seconds",
            "Age of the oldest unacknowledged event",
            registry=r,
        )
        self.publish_latency = Histogram(
            "edge_agent_publish_latency_seconds",
            "Outbox commit to PUBACK",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60),
            registry=r,
        )

    def record(self, result: IdentificationResult) -> None:
        """Count one identification and its failed sources."""
        event = result.event
        self.identifications.labels(event.triage.transport_class, event.triage.disposition).inc()
        readings = event.readings
        for name, status in (
            ("bms", readings.bms.status),
            ("label", readings.label.status),
            ("weight", readings.weight.status),
        ):
            if status in ("failed", "absent"):
                self.source_failures.labels(name).inc()

    def serve(self, host: str, port: int) -> None:
        """Expose /metrics over HTTP (port 0 = off)."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)
