"""Prometheus metrics of the gateway, in a registry of its own.

Outbox depth/age/bytes, upstream connection state, publish latency and failures come from the
uplink's metrics under the ``gateway_upstream_`` prefix in the same registry.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from edge_agent.uplink.metrics import UplinkMetrics


class GatewayMetrics:
    """Accepted and rejected counters, site state, plus the upstream (outbox) metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r: Any = self.registry
        self.accepted = Counter(
            "gateway_accepted", "messages accepted and stored for upstream", ["kind"], registry=r
        )
        self.rejected = Counter(
            "gateway_rejected", "messages rejected, by reason", ["reason"], registry=r
        )
        self.site_connected = Gauge(
            "gateway_site_connected", "1 while connected to the site broker", registry=r
        )
        self.held_evidence = Gauge(
            "gateway_held_evidence", "evidence waiting for its event (unacknowledged)", registry=r
        )
        self.trust_store_ok = Gauge(
            "gateway_trust_store_ok",
            "1 while the trust store file loads; 0: it is missing or invalid (last good in use)",
            registry=r,
        )
        self.dead_letters = Gauge(
            "gateway_dead_letters",
            "rejected messages kept for an operator (not replayed)",
            registry=r,
        )
        self.dead_letter_bytes = Gauge(
            "gateway_dead_letters_bytes", "payload bytes of the kept rejected messages", registry=r
        )
        self.dead_letters_dropped = Counter(
            "gateway_dead_letters_dropped",
            "dead letters evicted by the count, bytes or age limit (oldest first)",
            registry=r,
        )
        self.replayed = Counter(
            "gateway_replayed", "dead letters re-admitted, by result", ["result"], registry=r
        )
        self.upstream = UplinkMetrics(self.registry, prefix="gateway_upstream")
        self._server: Any = None

    def serve(self, host: str, port: int) -> None:
        """Start the HTTP endpoint (daemon thread); port 0 does nothing."""
        if port:
            self._server, _ = start_http_server(port, addr=host, registry=self.registry)

    def close(self) -> None:
        """Stop the HTTP endpoint if one runs."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
