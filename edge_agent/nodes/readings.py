"""What the station calls: a stable weight, the bench sensors, and dock triggers.

``source`` is a :class:`SerialNodeLink` or a :class:`NodeRegistry`: both expose ``hub``.
Readings never raise for a slow or silent node: they return ``status`` "partial"/"failed" with
the reason in ``problems``, so the station can still emit an event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

from edge_agent.model import SensorReading, WeightReading
from edge_agent.nodes.hub import MessageHub
from edge_agent.nodes.messages import DockMessage, SensorMessage, WeightMessage
from edge_agent.nodes.protocol import NodeMessage


class NodeSource(Protocol):
    """Anything with a message hub: a link or a registry."""

    hub: MessageHub


def weight_reading(msg: NodeMessage, *, duration_ms: float | None = None) -> WeightReading:
    """Convert one weight message into a :class:`WeightReading` (kg, rounded to e on the node)."""
    w = msg.body
    assert isinstance(w, WeightMessage)
    problems: list[str] = []
    status: Literal["ok", "partial", "failed"] = "ok"
    if w.fault:
        status, problems = "failed", [f"scale fault: {w.fault}"]
    elif w.overload:
        status, problems = "failed", ["scale overload"]
    elif w.underload:
        status, problems = "failed", ["scale underload (below zero)"]
    else:
        if not w.stable:
            status = "partial"
            problems.append("scale not stable")
        if not w.calibrated:
            status = "partial"
            problems.append("scale not calibrated")
    mass = None if status == "failed" else w.net_g / 1000.0
    return WeightReading(
        status=status,
        mass_kg=mass,
        stable=w.stable and status != "failed",
        division_kg=w.e_g / 1000.0,
        indicative=w.indicative,
        node_id=msg.node_id,
        problems=tuple(problems),
        duration_ms=duration_ms,
    )


async def read_weight(source: NodeSource, timeout: float) -> WeightReading:
    """Wait up to ``timeout`` s for a stable weight received after the call; on timeout return
    the last one seen (status "partial") or status "failed" if the scale said nothing."""
    t0 = time.monotonic()
    last: NodeMessage | None = None
    with source.hub.subscribe() as q:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    msg = await q.get()
                    if not isinstance(msg.body, WeightMessage):
                        continue
                    last = msg
                    if msg.body.stable or msg.body.fault or msg.body.overload:
                        break
        except TimeoutError:
            pass
    ms = (time.monotonic() - t0) * 1000
    if last is None:
        return WeightReading(
            status="failed",
            problems=(f"no weight from a scale node within {timeout:.1f}s",),
            duration_ms=ms,
        )
    reading = weight_reading(last, duration_ms=ms)
    if reading.status == "partial" and not reading.stable:
        problems = (*reading.problems, f"not stable within {timeout:.1f}s")
        return WeightReading(**{**reading.__dict__, "problems": problems})
    return reading


def sensor_reading(msg: NodeMessage) -> SensorReading:
    """Convert one sensor message into a :class:`SensorReading`."""
    s = msg.body
    assert isinstance(s, SensorMessage)
    return SensorReading(
        status="partial" if s.errs else "ok",
        node_id=msg.node_id,
        temperatures_c=s.temps,
        gas_level=s.gas,
        gas_alarm=s.gas_alarm,
        docked=s.dock,
        problems=s.errs,
    )


async def read_sensors(
    source: NodeSource, timeout: float, *, max_age_s: float = 2.0
) -> SensorReading:
    """The latest sensor message if younger than ``max_age_s``, else the next one within
    ``timeout``; status "failed" when none arrives."""
    now = time.monotonic()
    with source.hub.subscribe() as q:
        fresh = [
            (seen, m) for (_, t), (m, seen) in _latest_with_time(source.hub).items() if t == "s"
        ]
        fresh = [(seen, m) for seen, m in fresh if now - seen <= max_age_s]
        if fresh:
            return sensor_reading(max(fresh, key=lambda x: x[0])[1])
        try:
            async with asyncio.timeout(timeout):
                while True:
                    msg = await q.get()
                    if isinstance(msg.body, SensorMessage):
                        return sensor_reading(msg)
        except TimeoutError:
            return SensorReading(
                status="failed", problems=(f"no sensor message within {timeout:.1f}s",)
            )


def _latest_with_time(hub: MessageHub) -> dict[tuple[str, str], tuple[NodeMessage, float]]:
    return {k: (m, hub.latest_at.get(k, 0.0)) for k, m in hub.latest.items()}


@dataclass(frozen=True, kw_only=True)
class DockTrigger:
    """A reason to start an identification: the dock switch or a weight rise/fall."""

    kind: Literal["dock_switch", "weight"]
    docked: bool
    node_id: str
    mass_kg: float | None = None


async def dock_events(source: NodeSource, *, rise_kg: float = 5.0) -> AsyncIterator[DockTrigger]:
    """Yield a trigger for every dock-switch change and every stable net weight crossing
    ``rise_kg`` (up: docked, down: undocked). Runs until cancelled."""
    loaded: dict[str, bool] = {}
    for (node_id, kind), msg in list(source.hub.latest.items()):  # start from what is known
        if kind == "w" and isinstance(msg.body, WeightMessage) and msg.body.stable:
            loaded[node_id] = msg.body.net_g / 1000.0 >= rise_kg
    with source.hub.subscribe() as q:
        while True:
            msg = await q.get()
            body = msg.body
            if isinstance(body, DockMessage):
                yield DockTrigger(kind="dock_switch", docked=body.docked, node_id=msg.node_id)
            elif isinstance(body, WeightMessage) and body.stable and not body.fault:
                kg = body.net_g / 1000.0
                now_loaded = kg >= rise_kg
                was = loaded.get(msg.node_id)
                loaded[msg.node_id] = now_loaded
                if was is not None and was != now_loaded:
                    yield DockTrigger(
                        kind="weight", docked=now_loaded, node_id=msg.node_id, mass_kg=kg
                    )
