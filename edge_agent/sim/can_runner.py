"""A thread that drives one or more CAN simulators on one python-can bus.

Simulators implement ``on_message(msg, now)`` and ``tick(now) -> next wake time``; the runner
owns the bus (virtual channel in-process, slcan over a pty across processes), receives with
a timeout up to the earliest wake time and always shuts the bus down when stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

import can

from edge_agent.errors import SimulatorError

log = logging.getLogger(__name__)


class CanSimulator(Protocol):
    """What the runner needs from a simulator."""

    def attach(self, send: Any) -> None:
        """Receive the ``send(can_id, data, extended)`` callable."""

    def on_message(self, msg: can.Message, now: float) -> None:
        """Handle one received frame."""

    def tick(self, now: float) -> float:
        """Do periodic work; return the next time it wants to run."""


def open_sim_bus(interface: str, channel: str, bitrate: int = 250_000) -> can.BusABC:
    """Open the simulator's own bus; SimulatorError when it cannot."""
    kwargs: dict[str, Any] = {"interface": interface, "channel": channel}
    if interface == "slcan":
        kwargs.update(bitrate=bitrate, sleep_after_open=0)
    elif interface == "virtual":
        kwargs["receive_own_messages"] = False
    else:
        kwargs["bitrate"] = bitrate
    try:
        return can.Bus(**kwargs)
    except (can.CanError, OSError, ValueError) as exc:
        raise SimulatorError(f"simulator cannot open {interface}:{channel}: {exc}") from None


class SimRunner:
    """Runs simulators in a background thread; start()/stop() or a (async) context manager."""

    def __init__(
        self,
        sims: list[CanSimulator],
        *,
        bus: can.BusABC | None = None,
        interface: str = "virtual",
        channel: str = "vcan0",
        bitrate: int = 250_000,
    ) -> None:
        self.sims = sims
        self._bus = bus
        self._own_bus = bus is None
        self._open_args = (interface, channel, bitrate)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self.sent = 0

    @property
    def bus(self) -> can.BusABC:
        """The bus the simulators talk on (open after start())."""
        if self._bus is None:
            raise SimulatorError("simulator not started")
        return self._bus

    def _send(self, can_id: int, data: bytes, extended: bool = True) -> None:
        msg = can.Message(arbitration_id=can_id, data=data, is_extended_id=extended)
        with self._lock:
            self.sent += 1
            self.bus.send(msg)

    def start(self) -> SimRunner:
        """Open the bus and start the thread."""
        if self._bus is None:
            self._bus = open_sim_bus(*self._open_args)
        for sim in self.sims:
            sim.attach(self._send)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="edge-agent-can-sim", daemon=False)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and shut the bus down (if the runner opened it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        if self._bus is not None and self._own_bus:
            self._bus.shutdown()
            self._bus = None

    def _run(self) -> None:
        bus = self.bus
        wake = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= wake:
                    wake = min(sim.tick(now) for sim in self.sims)
                timeout = max(0.0, min(wake - time.monotonic(), 0.05))
                msg = bus.recv(timeout)
                if msg is not None:
                    now = time.monotonic()
                    for sim in self.sims:
                        sim.on_message(msg, now)
                    wake = min(wake, now)  # let simulators react at once
        except Exception as exc:  # keep the failure for the test/CLI instead of a dead thread
            log.exception("CAN simulator stopped")
            self.error = exc

    def __enter__(self) -> SimRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> SimRunner:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
