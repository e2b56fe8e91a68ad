"""Config section of the MicroPython companion nodes."""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.dataform import bounded


@dataclass(frozen=True, kw_only=True)
class NodeSettings:
    """Serial ports (pyserial URLs or paths, globs allowed) of the scale and sensor nodes."""

    ports: tuple[str, ...] = ()
    baudrate: int = bounded(1200, 3_000_000, default=115_200)
    hello_timeout_s: float = bounded(0.1, 60.0, default=3.0)
    stable_timeout_s: float = bounded(0.1, 120.0, default=5.0)
