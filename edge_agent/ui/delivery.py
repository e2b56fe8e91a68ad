"""An event's delivery state, read through one function so receipts can be wired in later.

Today the station knows two states: ``stored`` (committed to the outbox, not yet acknowledged)
and ``sent`` (the broker acknowledged it and the row left the outbox). Issue 13 adds the
gateway's signed receipts: ``accepted`` and ``rejected`` (with the reason) then come from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

DeliveryStateName = Literal["stored", "sent", "accepted", "rejected"]


@dataclass(frozen=True, kw_only=True)
class DeliveryState:
    """Where an event is on its way to the backend."""

    state: DeliveryStateName
    reason: str = ""  # why a rejection happened


def delivery_state(agent: Any, event_id: str) -> DeliveryState:
    """The delivery state of ``event_id`` as the running station knows it."""
    sink = getattr(agent, "sink", None)
    fut = sink.delivery(event_id) if sink is not None else None
    if fut is not None:
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            return DeliveryState(state="sent")
        return DeliveryState(state="stored")
    # an event from before a restart: still in the outbox means not yet acknowledged
    outbox = getattr(agent, "outbox", None)
    if outbox is not None and any(row.key == event_id for row in outbox.rows(limit=10_000)):
        return DeliveryState(state="stored")
    return DeliveryState(state="sent")
