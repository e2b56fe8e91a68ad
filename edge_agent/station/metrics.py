"""Prometheus metrics of a station: identifications and source failures (outbox and publish
latency metrics come from ``edge_agent.uplink.metrics`` in the same registry)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

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
        self.identification_seconds = Histogram(
            "edge_agent_identification_seconds",
            "Trigger to outbox commit of one identification",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
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
        slowest = max(result.source_ms.values(), default=0.0) / 1000.0
        self.identification_seconds.observe(slowest + (result.stored_at - result.sources_done_at))

    def serve(self, host: str, port: int) -> None:
        """Expose /metrics over HTTP (port 0 = off)."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)
