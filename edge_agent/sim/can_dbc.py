"""A DBC broadcaster: sends a pack's messages (every multiplexer page) with chosen signal values,
plus optional noise frames on other ids, the way a pack's BMS broadcasts when it is awake."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any

import can

from edge_agent.sim.can_runner import SimRunner

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DbcSimConfig:
    """Which messages to send, with which signal values (unset signals send 0 raw)."""

    messages: tuple[str, ...]  # message names from the DBC
    values: dict[str, float] = field(default_factory=dict)  # signal -> physical value
    period_s: float = 0.02  # per message page
    noise_ids: tuple[int, ...] = ()  # extra frame ids with random payloads
    truncate: dict[str, int] = field(default_factory=dict)  # message -> DLC (length faults)


def encode_pages(db: Any, config: DbcSimConfig) -> list[tuple[int, bytes, bool]]:
    """All frames of one broadcast cycle: (frame id, payload, extended)."""
    frames: list[tuple[int, bytes, bool]] = []
    for name in config.messages:
        message = db.get_message_by_name(name)
        mux = next((s for s in message.signals if s.is_multiplexer), None)
        pages: list[int | None] = [None]
        if mux is not None:
            pages = sorted({p for s in message.signals for p in (s.multiplexer_ids or [])})
        for page in pages:
            values: dict[str, float] = {}
            for signal in message.signals:
                if signal.is_multiplexer:
                    values[signal.name] = page if page is not None else 0
                elif page is None or not signal.multiplexer_ids or page in signal.multiplexer_ids:
                    values[signal.name] = config.values.get(signal.name, signal.offset)
            data = message.encode(values, scaling=True, strict=False, padding=False)
            if name in config.truncate:
                data = data[: config.truncate[name]]
            frames.append((message.frame_id, bytes(data), message.is_extended_frame))
    return frames


class DbcBroadcaster:
    """Cycles through the encoded frames at ``period_s`` per frame."""

    def __init__(self, db: Any, config: DbcSimConfig, *, seed: int = 1) -> None:
        self.config = config
        self.frames = encode_pages(db, config)
        self._rng = random.Random(seed)
        self._send: Any = None
        self._i = 0
        self._next = 0.0

    def attach(self, send: Any) -> None:
        """Receive the runner's send callable."""
        self._send = send

    def on_message(self, msg: can.Message, now: float) -> None:
        """A broadcaster ignores what it hears."""

    def tick(self, now: float) -> float:
        """Send the next frame (and a noise frame) when due."""
        if now >= self._next and self.frames:
            can_id, data, extended = self.frames[self._i % len(self.frames)]
            self._i += 1
            self._send(can_id, data, extended)
            if self.config.noise_ids:
                noise = self._rng.choice(self.config.noise_ids)
                self._send(noise, self._rng.randbytes(8), noise > 0x7FF)
            self._next = now + self.config.period_s
        return self._next


class DbcBroadcasterSimulator(SimRunner):
    """A DBC broadcaster on its own bus and thread."""

    def __init__(
        self,
        db: Any,
        config: DbcSimConfig,
        *,
        channel: str = "vcan0",
        interface: str = "virtual",
        bitrate: int = 500_000,
        bus: can.BusABC | None = None,
    ) -> None:
        self.broadcaster = DbcBroadcaster(db, config)
        super().__init__(
            [self.broadcaster], bus=bus, interface=interface, channel=channel, bitrate=bitrate
        )


def demo_config(
    plan: Any, *, period_s: float = 0.002, values: dict[str, float] | None = None
) -> DbcSimConfig:
    """A broadcast of every message a profile's plan uses: cells and temperatures get
    plausible values, other signals the ``values`` given (else their raw 0)."""
    values = dict(values or {})
    for i, name in enumerate(plan.cells):
        values.setdefault(name, 3.60 + 0.001 * (i % 50))
    for i, name in enumerate(plan.temps):
        values.setdefault(name, 20.0 + (i % 6))
    messages = tuple(entry.message.name for entry in plan.ids.values())
    return DbcSimConfig(messages=messages, values=values, period_s=period_s)
