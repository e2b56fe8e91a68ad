"""The gateway service behind ``edge-agent gateway``: signals, metrics, sd_notify READY/WATCHDOG.

Same lifecycle as the station's service (``station/service.py``): SIGTERM/SIGINT stop it,
READY=1 goes to systemd once both the site and the upstream broker are connected (the unit is
``Type=notify``), WATCHDOG=1 every half ``WatchdogSec=`` while the gateway worker is alive and
taking turns, so systemd restarts a gateway whose worker died or hangs, and STOPPING=1 on the
way out.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from edge_agent.errors import GatewayError
from edge_agent.gateway.pipeline import Gateway
from edge_agent.gateway.settings import GatewaySettings
from edge_agent.sd_notify import Notifier

log = logging.getLogger("edge_agent.gateway.service")

# The worker takes a turn at least every ~1.25 s (inbox wait or full-outbox back-off) plus one
# batch; this much silence means it hangs.
WORKER_STALL_S = 10.0
# How often the service looks at the connections before READY.
STARTUP_POLL_S = 0.1


class GatewayService:
    """Reports a started Gateway's state to systemd until ``stop`` is set."""

    def __init__(
        self, gateway: Gateway, notifier: Notifier, *, stall_s: float = WORKER_STALL_S
    ) -> None:
        self.gateway = gateway
        self.notifier = notifier
        self.stall_s = stall_s
        self.ready = False
        self.healthy = True
        self.turns = 0  # loop iterations (tests wait on these instead of on time)

    def run(self, stop: threading.Event) -> None:
        """READY once both brokers are connected; WATCHDOG while the worker is alive."""
        interval = self.notifier.watchdog_interval_s()
        ping_every = interval / 2 if interval is not None else None
        next_ping = 0.0
        self.notifier.status("connecting to the site and upstream brokers")
        while not stop.is_set():
            if not self.ready and self.gateway.connected:
                self.ready = True
                settings = self.gateway.settings
                self.notifier.ready(
                    status=f"forwarding {settings.site_mqtt.host}:{settings.site_mqtt.port}"
                    f" -> {settings.upstream_mqtt.host}:{settings.upstream_mqtt.port}"
                )
                log.info("gateway ready: both brokers connected")
            now = time.monotonic()
            if ping_every is not None and now >= next_ping:
                self._ping()
                next_ping = now + ping_every
            self.turns += 1
            if self.ready:
                stop.wait(ping_every if ping_every is not None else None)
            else:
                stop.wait(STARTUP_POLL_S if ping_every is None else min(STARTUP_POLL_S, ping_every))
        self.notifier.stopping()

    def _ping(self) -> None:
        healthy = self.gateway.worker_alive(self.stall_s)
        if healthy:
            self.notifier.watchdog()
        elif self.healthy:
            log.error("gateway worker dead or stuck: no more watchdog pings (systemd restarts us)")
        self.healthy = healthy


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_service(settings: GatewaySettings, *, metrics_host: str, metrics_port: int) -> int:
    """Run the gateway until SIGTERM/SIGINT (main thread only); returns the exit status."""
    stop = threading.Event()
    with _stop_on_signals(stop):
        gateway = Gateway(settings)
        try:
            gateway.metrics.serve(metrics_host, metrics_port)
        except OSError as exc:
            gateway.stop()
            raise GatewayError(
                f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc.strerror}"
            ) from None
        gateway.start()
        log.info(
            "gateway running",
            extra={"site": settings.site_mqtt.host, "upstream": settings.upstream_mqtt.host},
        )
        try:
            GatewayService(gateway, Notifier.from_environment()).run(stop)
        finally:
            log.info("gateway stopping")
            gateway.stop()
    return 0
