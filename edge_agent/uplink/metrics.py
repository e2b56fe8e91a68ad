"""Prometheus metrics of one uplink (outbox depth/age/bytes, published, failures, latency)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from edge_agent.uplink.outbox import STATES, Outbox

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600)


class UplinkMetrics:
    """Metrics in ``registry`` named ``<prefix>_*`` (the gateway uses its own prefix)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, prefix: str = "edge_agent_uplink"
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r: Any = self.registry
        self.published = Counter(
            f"{prefix}_published", "messages acknowledged by the broker", registry=r
        )
        self.failures = Counter(
            f"{prefix}_publish_failures", "publishes refused or not sent", registry=r
        )
        self.reconnects = Counter(f"{prefix}_reconnects", "broker connections lost", registry=r)
        self.latency = Histogram(
            f"{prefix}_publish_latency_seconds",
            "time from outbox commit to PUBACK",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.depth = Gauge(
            f"{prefix}_outbox_depth", "messages stored, not yet acknowledged", registry=r
        )
        self.oldest_age = Gauge(
            f"{prefix}_outbox_oldest_age_seconds", "age of the oldest stored message", registry=r
        )
        self.bytes = Gauge(f"{prefix}_outbox_bytes", "payload bytes stored", registry=r)
        self.inflight = Gauge(
            f"{prefix}_inflight", "messages published, awaiting PUBACK", registry=r
        )
        self.connected = Gauge(f"{prefix}_connected", "1 while connected to the broker", registry=r)
        self.rows = Gauge(
            f"{prefix}_outbox_rows",
            "outbox rows by state (stored, sent, accepted, rejected, refused)",
            ["state"],
            registry=r,
        )

    def bind_outbox(self, outbox: Outbox) -> None:
        """Read depth, age and bytes from ``outbox`` at scrape time."""
        self.depth.set_function(lambda: float(outbox.depth))
        self.oldest_age.set_function(lambda: outbox.status().oldest_age_s)
        self.bytes.set_function(lambda: float(outbox.status().bytes))
        for state in STATES:
            self.rows.labels(state=state).set_function(_state_count(outbox, state))


def _state_count(outbox: Outbox, state: str) -> Callable[[], float]:
    def count() -> float:
        return float(outbox.state_counts()[state])

    return count
