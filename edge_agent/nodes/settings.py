"""Config section of the MicroPython companion nodes."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_agent.dataform import bounded


@dataclass(frozen=True, kw_only=True)
class NodeSettings:
    """Serial ports (pyserial URLs or paths, globs allowed) of the scale and sensor nodes."""

    ports: tuple[str, ...] = ()
    baudrate: int = bounded(1200, 3_000_000, default=115_200)
    hello_timeout_s: float = bounded(0.1, 60.0, default=3.0)
    stable_timeout_s: float = bounded(0.1, 120.0, default=5.0)
    command_timeout_s: float = bounded(0.5, 120.0, default=8.0)
    lost_after_s: float = bounded(0.5, 600.0, default=6.5)  # three missed 2 s heartbeats
    rise_kg: float = bounded(0.0, 10_000.0, default=5.0)  # weight-rise dock trigger threshold
    # firmware settings (firmware/app/node.py CONFIG keys) sent on every new boot id,
    # e.g. {e_g = 50, max_g = 600000, band_g = 50, window = 10}
    node_config: dict[str, int | float | bool | str] = field(default_factory=dict)
