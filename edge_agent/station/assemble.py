"""Build the identification event from readings, reconciliation and triage (pure)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from edge_agent.bms.plausibility import assess_reading
from edge_agent.event_codec import uuid7
from edge_agent.model import (
    Check,
    Clock,
    ClockState,
    Evidence,
    IdentificationEvent,
    IntakeRecord,
    PackIdentity,
    Readings,
    Triage,
)


@dataclass(frozen=True, kw_only=True)
class EventContext:
    """Who signs and where in the key's sequence this event sits."""

    site: str
    station: str
    kid_hex: str
    boot_epoch: int
    seq: int
    clock_state: ClockState
    now: datetime | None = None


def utc_text(moment: datetime) -> str:
    """RFC 3339 UTC text with milliseconds and a Z suffix."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def build_event(
    ctx: EventContext,
    *,
    trigger: str,
    pack: PackIdentity,
    readings: Readings,
    checks: tuple[Check, ...],
    triage: Triage,
    observations: tuple[str, ...],
    photo_jpeg: bytes | None,
    intake: IntakeRecord | None = None,
) -> IdentificationEvent:
    """Assemble a v1 event; the evidence photo is referenced by its SHA-256."""
    now = ctx.now or datetime.now(UTC)
    # every number in a signed event is marked when implausible or unavailable (issue 14)
    readings = replace(readings, bms=assess_reading(readings.bms, pack.battery_type))
    evidence: tuple[Evidence, ...] = ()
    if photo_jpeg:
        evidence = (
            Evidence(
                kind="label_photo",
                sha256=hashlib.sha256(photo_jpeg).hexdigest(),
                size=len(photo_jpeg),
            ),
        )
    return IdentificationEvent(
        event_id=uuid7(int(now.timestamp() * 1000)),
        site=ctx.site,
        station=ctx.station,
        kid=ctx.kid_hex,
        boot_epoch=ctx.boot_epoch,
        seq=ctx.seq,
        clock=Clock(utc=utc_text(now), state=ctx.clock_state),
        trigger=trigger,
        pack=pack,
        readings=readings,
        checks=checks,
        triage=triage,
        observations=observations,
        evidence=evidence,
        intake=intake,
    )
