"""Transport class (ADR SP 376/377) and disposition (reuse vs recycling), with reasons.

Follows reference/standards.md section 6: ADR sets no numeric thresholds, so the numbers come
from ``TriageSettings`` (site policy). The order of precedence is critical > damaged/defective >
undiagnosable > normal; every rule that fires adds a reason, so the technician sees all of them.
"""

from __future__ import annotations

from collections.abc import Iterable

from edge_agent.model import Check, Readings, Triage, Value
from edge_agent.station.settings import TriageSettings

# technician observations -> SP 376 criterion
CRITICAL_OBSERVATIONS = {
    "smoke": "smoke",
    "fire": "flame or fire",
    "sparks": "sparks",
    "heat": "rising temperature without load",
    "gassing": "active gas release",
    "hissing": "hissing (venting)",
}
DAMAGE_OBSERVATIONS = {
    "swelling": "swelling (SP 376 note c)",
    "deformation": "casing deformation (SP 376 note c)",
    "damage": "physical or mechanical damage",
    "dent": "dented casing (SP 376 note c)",
    "discolouration": "discolouration or scorch marks (SP 376 note c)",
    "leak": "electrolyte leak (leaked or vented)",
    "odour": "solvent odour (leaked or vented)",
    "corrosion": "corrosion",
    "crash": "known crash vehicle (misuse, SP 376 note b)",
    "flood": "known flood damage (misuse, SP 376 note b)",
    "loose_wiring": "loose wiring",
}
KNOWN_OBSERVATIONS = frozenset(CRITICAL_OBSERVATIONS) | frozenset(DAMAGE_OBSERVATIONS)
SAFETY_FAULTS = {
    "insulation",
    "cell_undervoltage",
    "cell_overvoltage",
    "overtemperature",
    "overcurrent",
}


def _num(value: Value | None) -> float | None:
    if value is None or isinstance(value.value, bool | str):
        return None
    return float(value.value)


def triage(
    readings: Readings,
    checks: Iterable[Check],
    observations: Iterable[str],
    settings: TriageSettings,
) -> Triage:
    """Classify the pack for transport and decide reuse vs recycling."""
    observed = {o.strip().lower() for o in observations}
    bms = readings.bms
    state = bms.state
    critical: list[str] = [
        CRITICAL_OBSERVATIONS[o] for o in sorted(observed) if o in CRITICAL_OBSERVATIONS
    ]
    damaged: list[str] = [
        DAMAGE_OBSERVATIONS[o] for o in sorted(observed) if o in DAMAGE_OBSERVATIONS
    ]

    sensors = readings.sensors
    if sensors is not None and sensors.gas_alarm:
        critical.append("gas/VOC sensor alarm at the bench")
    t_max = _num(state.temperature_max)
    if t_max is not None and t_max >= settings.critical_temperature_c:
        critical.append(
            f"pack temperature {t_max:g} °C at or above {settings.critical_temperature_c:g} °C"
        )
    if sensors is not None and any(
        t >= settings.critical_temperature_c for t in sensors.temperatures_c
    ):
        critical.append("bench temperature sensor at or above the critical limit")

    faults = sorted(set(state.faults) & SAFETY_FAULTS)
    if faults:
        damaged.append(f"BMS safety faults: {', '.join(faults)} (SP 376 note d/f)")
    v_min = _num(state.cell_voltage_min)
    if v_min is not None and v_min < settings.min_cell_voltage_v:
        damaged.append(
            f"cell voltage {v_min:.3f} V below {settings.min_cell_voltage_v:g} V (deep discharge)"
        )

    undiagnosable = bms.status in ("failed", "absent")
    soh = _num(state.soh)
    spread = _num(state.cell_voltage_spread)
    failed_checks = [c for c in checks if c.status == "fail"]

    if critical:
        transport, packing = "critical", "P911"
        reasons = critical + damaged
        next_step = "Isolate the pack now: move it to the quarantine area and follow the thermal-event procedure."
    elif damaged:
        transport, packing = "damaged_defective", "P908"
        reasons = damaged
        next_step = "Pack as DAMAGED/DEFECTIVE (P908, one per packaging, no air transport)."
    elif undiagnosable:
        transport, packing = "undiagnosable", "P908"
        reasons = ["BMS cannot be read, so the pack cannot be diagnosed (SP 376)"]
        next_step = (
            "Check the BMS connector and 12 V wake-up, then identify again; otherwise ship as P908."
        )
    else:
        transport, packing = "normal", "P903"
        reasons = ["no damage observed, BMS readable, no safety faults"]
        next_step = ""

    disposition: str
    if transport != "normal":
        disposition = "material_recycling"
        reasons.append("not intact: material recycling")
    elif failed_checks:
        disposition = "expert_review"
        reasons.append("sources disagree: " + "; ".join(c.name for c in failed_checks))
        next_step = "Sources disagree: set the pack aside for review; do not relabel it."
    elif soh is None:
        disposition = "expert_review"
        reasons.append("SOH unknown: capacity test needed before reuse")
        next_step = "Send to capacity testing."
    elif soh >= settings.reuse_min_soh_pct and (
        spread is None or spread <= settings.reuse_max_cell_spread_v
    ):
        disposition = "reuse_candidate"
        reasons.append(f"SOH {soh:g} % >= {settings.reuse_min_soh_pct:g} %")
        next_step = next_step or "Route to second-life grading."
    else:
        disposition = "material_recycling"
        if soh < settings.reuse_min_soh_pct:
            reasons.append(f"SOH {soh:g} % below {settings.reuse_min_soh_pct:g} %")
        if spread is not None and spread > settings.reuse_max_cell_spread_v:
            reasons.append(
                f"cell spread {spread * 1000:.0f} mV above {settings.reuse_max_cell_spread_v * 1000:.0f} mV"
            )
    if transport == "normal" and disposition == "material_recycling":
        packing = "P909"  # SP 377: batteries for disposal/recycling
        next_step = next_step or "Route to material recycling (SP 377, P909)."
    return Triage(
        transport_class=transport,  # type: ignore[arg-type]
        packing_instruction=packing,
        disposition=disposition,  # type: ignore[arg-type]
        reasons=tuple(reasons),
        next_step=next_step,
    )
