"""Corrections at the bench (pure): a new event that repeats a signed one with fields changed.

A signed event is never edited. A correction is a new event (new id, next sequence number)
whose ``corrects`` names the original and whose ``corrections`` list says what changed, from
what, why and who changed it. Changed observations re-run the triage on the original readings,
so an observation added after an identification feeds the triage like one made before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from edge_agent.errors import StationError
from edge_agent.model import Correction, IdentificationEvent, Observation, Triage
from edge_agent.station.settings import TriageSettings
from edge_agent.station.triage import KNOWN_OBSERVATIONS, triage

# what a technician may correct, and the fields of the event each one sets
CORRECTABLE_PACK_FIELDS = ("pack_code", "battery_type", "manufacturer", "serial")
DISPOSITIONS = ("reuse_candidate", "material_recycling", "expert_review")
MAX_VALUE = 200
MAX_REASON = 500


@dataclass(frozen=True, kw_only=True)
class CorrectionRequest:
    """What the technician asked to change: ``name`` is ``pack.<field>``,
    ``triage.disposition`` or ``observations`` (space-separated tokens)."""

    name: str
    value: str
    reason: str


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def corrected_event(
    original: IdentificationEvent,
    requests: Sequence[CorrectionRequest],
    *,
    settings: TriageSettings,
    technician: str | None,
) -> tuple[IdentificationEvent, tuple[Correction, ...]]:
    """The original with the requests applied (id, clock, seq still the original's: the
    caller assigns new ones) and the corrections that describe it; StationError when a
    request is not allowed."""
    if not requests:
        raise StationError("a correction needs at least one field to change")
    pack, verdict, observations = original.pack, original.triage, original.observations
    corrections: list[Correction] = []
    disposition: str | None = None
    for req in requests:
        reason = req.reason.strip()
        value = req.value.strip()
        if not 1 <= len(reason) <= MAX_REASON:
            raise StationError(f"a correction needs a reason of 1..{MAX_REASON} characters")
        if len(value) > MAX_VALUE:
            raise StationError(f"{req.name}: the value is longer than {MAX_VALUE} characters")
        if req.name.startswith("pack."):
            field_name = req.name.removeprefix("pack.")
            if field_name not in CORRECTABLE_PACK_FIELDS:
                raise StationError(f"{req.name} cannot be corrected at the bench")
            previous = _text(getattr(pack, field_name))
            if field_name == "pack_code" and value:
                from edge_agent.codes.gbt34014 import parse_pack_code

                value = value.upper()
                parse_pack_code(value)  # CodeError (an EdgeAgentError) says what is wrong
            source = {**pack.source, field_name: "technician"}
            changes: dict[str, object] = {field_name: value or None, "source": source}
            pack = replace(pack, **changes)  # type: ignore[arg-type]
        elif req.name == "triage.disposition":
            if value not in DISPOSITIONS:
                raise StationError(f"disposition must be one of {', '.join(DISPOSITIONS)}")
            previous, disposition = verdict.disposition, value
        elif req.name == "observations":
            tokens = tuple(dict.fromkeys(t.lower() for t in value.split()))
            unknown = [t for t in tokens if t not in KNOWN_OBSERVATIONS]
            if unknown:
                raise StationError(f"unknown observation(s) {', '.join(unknown)}")
            previous, value = " ".join(observations), " ".join(tokens)
            observations = tokens
        else:
            raise StationError(f"{req.name} cannot be corrected at the bench")
        if (previous or "") == value:
            raise StationError(f"{req.name}: the correction changes nothing")
        corrections.append(
            Correction(name=req.name, value=value, previous=previous, reason=reason, by=technician)
        )
    if observations != original.observations:
        verdict = triage(original.readings, original.checks, observations, settings)
    if disposition is not None:
        reasons = (*verdict.reasons, f"disposition set by the technician: {corrections[-1].reason}")
        verdict = Triage(
            transport_class=verdict.transport_class,
            packing_instruction=verdict.packing_instruction,
            disposition=disposition,  # type: ignore[arg-type]
            reasons=reasons,
            next_step=verdict.next_step,
            unjudged=verdict.unjudged,
        )
    intake = original.intake
    if intake is not None and observations != original.observations:
        by = technician or intake.technician
        kept = tuple(o for o in intake.observations or () if o.what in observations)
        seen = {o.what for o in kept}
        added = tuple(Observation(what=o, by=by) for o in observations if o not in seen)
        intake = replace(intake, observations=(kept + added) or None)
    event = replace(
        original,
        pack=pack,
        triage=verdict,
        observations=observations,
        intake=intake,
        corrects=original.event_id,
        corrections=tuple(corrections),
    )
    return event, tuple(corrections)
