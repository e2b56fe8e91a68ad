"""Prometheus metrics of the gateway, in a registry of its own."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class GatewayMetrics:
    """Accepted and rejected counters, outbox depth/age and upstream state."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "gateway_accepted", "Messages accepted and stored for upstream", ["kind"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "gateway_rejected", "Messages rejected, by reason", ["reason"], registry=self.registry
        )
        self.forwarded = Counter(
            "gateway_forwarded", "Messages acknowledged by the upstream broker", registry=self.registry
        )
        self.outbox_depth = Gauge(
            "gateway_outbox_depth", "Messages waiting for upstream", registry=self.registry
        )
        self.outbox_age = Gauge(
            "gateway_outbox_oldest_age_seconds", "Age of the oldest waiting message",
            registry=self.registry,
        )
        self.upstream_connected = Gauge(
            "gateway_upstream_connected", "1 when connected to the upstream broker",
            registry=self.registry,
        )
        self.site_connected = Gauge(
            "gateway_site_connected", "1 when connected to the site broker", registry=self.registry
        )

    def watch_outbox(self, depth: Callable[[], float], age: Callable[[], float]) -> None:
        """Read depth and age from the outbox at scrape time."""
        self.outbox_depth.set_function(depth)
        self.outbox_age.set_function(age)

    def serve(self, host: str, port: int) -> None:
        """Start the HTTP endpoint (daemon thread); port 0 does nothing."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)
