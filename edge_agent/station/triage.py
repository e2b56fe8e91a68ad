"""Transport class (ADR SP 376/377) and disposition (reuse vs recycling), with reasons.

Follows reference/standards.md section 6: ADR sets no numeric thresholds, so the numbers come
from ``TriageSettings`` (site policy) and the chemistry table. The order of precedence is
critical > damaged/defective > undiagnosable > normal; every rule that fires adds a reason, so
the technician sees all of them.

Fault names, bench sensors and technician observations all go through the one vocabulary
(``edge_agent.bms.faults``). A BMS number that is implausible or unavailable
(``edge_agent.bms.plausibility``) never decides anything: triage names it in ``unjudged``,
says which check would settle it, and an implausible one sends the pack to expert review.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields

from edge_agent.bms.chemistry import deep_discharge_v, resolve
from edge_agent.bms.faults import GAS_ALARM, OBSERVATIONS, FaultMeaning, meaning
from edge_agent.bms.plausibility import TEMPERATURE_C, assess_reading, usable
from edge_agent.model import BmsState, Check, Readings, Triage, Value
from edge_agent.station.reconcile import pack_label_code
from edge_agent.station.settings import TriageSettings

# technician observations -> what they mean, from the one vocabulary
CRITICAL_OBSERVATIONS = {k: v.meaning for k, v in OBSERVATIONS.items() if v.severity == "critical"}
DAMAGE_OBSERVATIONS = {k: v.meaning for k, v in OBSERVATIONS.items() if v.severity == "damaged"}
KNOWN_OBSERVATIONS = frozenset(OBSERVATIONS)

# GB 18384-2020 / UN ECE R100: insulation resistance of DC circuits >= 100 ohm per volt
# (not in standards.md; the figure is the commonly cited one, unconfirmed against the text)
INSULATION_OHM_PER_V = 100.0
MAX_PACK_VOLTAGE_V = 1000.0  # threshold assumed when the pack voltage is unknown

# what would settle a value triage could not judge
SETTLING_CHECK: dict[str, str] = {
    "soh": "capacity test needed",
    "soc": "measure the open-circuit voltage",
    "temperature_min": "measure the pack surface temperature (IR thermometer) before moving it",
    "temperature_max": "measure the pack surface temperature (IR thermometer) before moving it",
    "cell_voltage_min": "measure module and cell voltages with a meter",
    "cell_voltage_max": "measure module and cell voltages with a meter",
    "cell_voltage_mean": "measure module and cell voltages with a meter",
    "cell_voltage_spread": "measure module and cell voltages with a meter",
    "insulation_resistance": "measure the insulation resistance with an insulation tester",
    "pack_voltage": "measure the pack voltage at the terminals",
    "current": "check the BMS current sensor",
    "cycle_count": "read the usage history with the maker's tool",
    "charge_count": "read the usage history with the maker's tool",
}
_STATE_VALUES = tuple(f.name for f in fields(BmsState) if f.name in SETTLING_CHECK)


def _fault_reason(name: str, what: FaultMeaning) -> str:
    return f"BMS fault {name}: {what.meaning} ({what.basis})"


def _unjudged(state: BmsState) -> list[tuple[str, Value]]:
    out: list[tuple[str, Value]] = []
    for name in _STATE_VALUES:
        value = getattr(state, name)
        if isinstance(value, Value) and value.quality is not None:
            out.append((name, value))
    return out


def _unjudged_reason(name: str, value: Value) -> str:
    unit = f" {value.unit}" if value.unit else ""
    return (
        f"could not judge {name}: reported {value.value}{unit} ({value.quality}: {value.note}); "
        f"{SETTLING_CHECK[name]}"
    )


def triage(
    readings: Readings,
    checks: Iterable[Check],
    observations: Iterable[str],
    settings: TriageSettings,
) -> Triage:
    """Classify the pack for transport and decide reuse vs recycling."""
    observed = {o.strip().lower() for o in observations}
    label = pack_label_code(readings.label.codes)
    bms_type = readings.bms.identity.battery_type
    chem, _ = resolve(
        label.fields.get("battery_type") if label else None,
        bms_type.value if bms_type is not None and isinstance(bms_type.value, str) else None,
    )
    bms = assess_reading(readings.bms, chem)
    state = bms.state
    critical: list[str] = []
    damaged: list[str] = []
    review: list[str] = []
    notes: list[str] = []
    by_severity = {"critical": critical, "damaged": damaged, "review": review, "info": notes}

    for o in sorted(observed):
        what = OBSERVATIONS.get(o)
        if what is not None:
            by_severity[what.severity].append(f"{what.meaning} ({what.basis})")

    sensors = readings.sensors
    if sensors is not None and sensors.gas_alarm:
        critical.append(f"{GAS_ALARM.meaning} ({GAS_ALARM.basis})")
    t_max = usable(state.temperature_max)
    if t_max is not None and t_max >= settings.critical_temperature_c:
        critical.append(
            f"pack temperature {t_max:g} °C at or above {settings.critical_temperature_c:g} °C"
        )
    bench = sensors.temperatures_c if sensors is not None else ()
    low, high = TEMPERATURE_C
    if any(low <= t <= high and t >= settings.critical_temperature_c for t in bench):
        critical.append("bench temperature sensor at or above the critical limit")
    odd_bench = [t for t in bench if not low <= t <= high]
    if odd_bench:
        review.append(
            f"bench temperature sensor reads {odd_bench[0]:g} °C (implausible): "
            "check the sensor and measure the pack surface temperature"
        )

    for name in dict.fromkeys(state.faults):
        what = meaning(name)
        by_severity[what.severity].append(_fault_reason(name, what))

    _insulation(bms.state, bms.identity.rated_voltage, critical, review)

    threshold = deep_discharge_v(chem, settings.min_cell_voltage_v)
    v_min = usable(state.cell_voltage_min)
    if v_min is not None and v_min < threshold:
        damaged.append(
            f"cell voltage {v_min:.3f} V below {threshold:g} V "
            f"(deep discharge for {chem or 'unknown chemistry'})"
        )

    unjudged = _unjudged(state)
    implausible = [(n, v) for n, v in unjudged if v.quality == "implausible"]
    undiagnosable = bms.status in ("failed", "absent")
    soh = usable(state.soh)
    spread = usable(state.cell_voltage_spread)
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
    reasons.extend(_unjudged_reason(n, v) for n, v in unjudged)
    reasons.extend(review)
    reasons.extend(notes)

    disposition: str
    if transport != "normal":
        disposition = "material_recycling"
        reasons.append("not intact: material recycling")
    elif failed_checks:
        disposition = "expert_review"
        reasons.append("sources disagree: " + "; ".join(c.name for c in failed_checks))
        next_step = "Sources disagree: set the pack aside for review; do not relabel it."
    elif review or implausible:
        disposition = "expert_review"
        checks_needed = dict.fromkeys(SETTLING_CHECK[n] for n, _ in implausible)
        why = "BMS reports values it cannot have" if implausible else "BMS warnings"
        next_step = f"{why}: set the pack aside for review" + (
            "; " + "; ".join(checks_needed) if checks_needed else ""
        )
        next_step += "."
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
        unjudged=tuple(n for n, _ in unjudged) or None,
    )


def _insulation(
    state: BmsState, rated_voltage: Value | None, critical: list[str], review: list[str]
) -> None:
    """Insulation resistance below 100 ohm/V of the pack voltage is an isolation fault."""
    r_kohm = usable(state.insulation_resistance)
    if r_kohm is None:
        return
    volts = usable(state.pack_voltage) or usable(rated_voltage)
    if volts is None or volts <= 0:
        limit = INSULATION_OHM_PER_V * MAX_PACK_VOLTAGE_V / 1000.0
        if r_kohm < limit:
            review.append(
                f"insulation resistance {r_kohm:g} kOhm, pack voltage unknown: cannot judge "
                f"against {INSULATION_OHM_PER_V:g} ohm/V; measure the pack voltage"
            )
        return
    limit = INSULATION_OHM_PER_V * volts / 1000.0
    if r_kohm < limit:
        what = meaning("insulation_low")
        critical.append(
            f"insulation resistance {r_kohm:g} kOhm below {INSULATION_OHM_PER_V:g} ohm/V x "
            f"{volts:g} V = {limit:g} kOhm: {what.basis}"
        )
