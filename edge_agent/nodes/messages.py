"""Typed bodies of the node protocol (version 1), validated with dataform."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge_agent.dataform import bounded, length, pattern


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """Fields every node line carries."""

    v: int
    t: str = length(1, 16)
    node: str = pattern(r"[0-9a-f]{2,64}")
    boot: str = pattern(r"[0-9a-f]{8}")
    seq: int = bounded(0, 2**62)
    ts: int = bounded(0, 2**62)


@dataclass(frozen=True, kw_only=True)
class Hello:
    """Sent on boot and on request."""

    minor: int = bounded(0, 1000)
    fw: str = ""
    role: str = "scale+sensors"
    adc: str = ""
    reset_cause: str = ""
    boots: int = bounded(0, 2**31, default=0)
    cfg: str = ""


@dataclass(frozen=True, kw_only=True)
class Heartbeat:
    """Periodic liveness and health."""

    up_ms: int = bounded(0, 2**62)
    mem_free: int = bounded(0, 2**40, default=0)
    mem_alloc: int = bounded(0, 2**40, default=0)  # after gc.collect()
    status: dict[str, str] = field(default_factory=dict)
    err: str = ""
    errors: int = bounded(0, 2**31, default=0)


@dataclass(frozen=True, kw_only=True)
class WeightMessage:
    """Scale state: grams are integers rounded to the division e on the node."""

    raw: int
    gross_g: int
    net_g: int
    tare_g: int = 0
    e_g: int = bounded(1, 10**7)
    max_g: int = bounded(1, 10**9)
    stable: bool
    zero: bool = False
    overload: bool = False
    underload: bool = False
    indicative: bool = True
    calibrated: bool = False
    rejected: int = bounded(0, 2**62, default=0)
    fault: str = ""


@dataclass(frozen=True, kw_only=True)
class SensorMessage:
    """Bench sensors."""

    temps: tuple[float, ...] = length(0, 16, default=())
    gas: float | None = bounded(0.0, 1.0, default=None)
    gas_raw: int | None = bounded(0, 65535, default=None)
    gas_alarm: bool = False
    dock: bool | None = None
    errs: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DockMessage:
    """Debounced dock-switch change."""

    docked: bool


@dataclass(frozen=True, kw_only=True)
class Ack:
    """Answer to a command, by id."""

    id: int
    op: str
    ok: bool
    cfg: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    err: str = ""


@dataclass(frozen=True, kw_only=True)
class Nak:
    """A command line the node could not parse (bad CRC, JSON, version)."""

    id: int | None = None
    err: str
    want_v: int | None = None


BODY_TYPES: dict[str, type] = {
    "hello": Hello,
    "hb": Heartbeat,
    "w": WeightMessage,
    "s": SensorMessage,
    "dock": DockMessage,
    "ack": Ack,
    "nak": Nak,
}

Body = Hello | Heartbeat | WeightMessage | SensorMessage | DockMessage | Ack | Nak
