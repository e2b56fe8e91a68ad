"""Plausibility of every number a BMS reading carries into an event (pure).

A value outside what its quantity can physically be is kept as evidence but marked
``implausible``; a protocol's "no data" code or a non-number is marked ``unavailable`` (the raw
code kept as text). Marked values never drive triage: triage says it could not judge them and
which check would settle it. Ranges are physical, not operational: the profile's tighter
limits stay a reconcile check.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace

from edge_agent.bms.chemistry import cell_voltage_band
from edge_agent.model import BmsIdentity, BmsReading, BmsState, Value

INF = math.inf
TEMPERATURE_C = (-40.0, 125.0)  # issue 14; cell and probe temperatures a BMS can report
# state field -> (low, high, unit); cell voltages come from the chemistry table instead
STATE_RANGES: dict[str, tuple[float, float, str]] = {
    "soc": (0.0, 100.0, "%"),
    "soh": (0.0, 100.0, "%"),
    "temperature_min": (*TEMPERATURE_C, "degC"),
    "temperature_max": (*TEMPERATURE_C, "degC"),
    "pack_voltage": (0.0, 1500.0, "V"),  # LV directive DC limit: no traction pack above
    "current": (-5000.0, 5000.0, "A"),
    "insulation_resistance": (0.0, INF, "kOhm"),
    "cycle_count": (0.0, 1e6, ""),
    "charge_count": (0.0, 0xFFFFFF, ""),  # BRM: 3 bytes
}
CELL_FIELDS = ("cell_voltage_min", "cell_voltage_max", "cell_voltage_mean")
# identity numbers: a rating of zero or less is no rating
IDENTITY_RANGES: dict[str, tuple[float, float, str]] = {
    "rated_capacity": (1e-3, 10_000.0, "Ah"),
    "rated_voltage": (1e-3, 1500.0, "V"),
    "rated_energy": (1e-3, 10_000.0, "kWh"),
}


def usable(value: Value | None) -> float | None:
    """The number of a value triage may judge on: None when absent, text or marked."""
    if value is None or value.quality is not None or isinstance(value.value, bool | str):
        return None
    number = float(value.value)
    return number if math.isfinite(number) else None


def unavailable(value: Value, raw: str, note: str) -> Value:
    """``value`` marked unavailable, its number replaced by the raw code as text."""
    return replace(value, value=raw, quality="unavailable", note=note)


def check_value(value: Value | None, low: float, high: float, unit: str) -> Value | None:
    """``value`` marked when it is not a finite number inside ``low..high``."""
    if value is None or value.quality is not None or isinstance(value.value, bool | str):
        return value
    number = float(value.value)
    if not math.isfinite(number):
        return unavailable(value, str(value.value), "not a number")
    if low <= number <= high:
        return value
    shown = f"{low:g}..{high:g}" if high != INF else f">= {low:g}"
    return replace(value, quality="implausible", note=f"outside {shown} {unit}".rstrip())


def _finite(values: tuple[float, ...]) -> tuple[tuple[float, ...], int]:
    kept = tuple(v for v in values if isinstance(v, int | float) and math.isfinite(v))
    return kept, len(values) - len(kept)


def assess_state(state: BmsState, chemistry: str | None) -> tuple[BmsState, list[str]]:
    """The state with every out-of-range value marked, and one problem line per mark."""
    changes: dict[str, object] = {}
    problems: list[str] = []
    lo_v, hi_v = cell_voltage_band(chemistry)
    ranges = dict(STATE_RANGES)
    for name in CELL_FIELDS:
        ranges[name] = (lo_v, hi_v, "V")
    ranges["cell_voltage_spread"] = (0.0, hi_v - lo_v, "V")
    for name, (low, high, unit) in ranges.items():
        before = getattr(state, name)
        after = check_value(before, low, high, unit)
        if after is not before and after is not None:
            changes[name] = after
            problems.append(_problem(name, after))
    for name in ("cell_voltages", "temperatures"):
        kept, dropped = _finite(getattr(state, name))
        if dropped:
            changes[name] = kept
            problems.append(f"{name}: {dropped} entries not a number (left out)")
    return (replace(state, **changes) if changes else state), problems  # type: ignore[arg-type]


def assess_identity(identity: BmsIdentity) -> tuple[BmsIdentity, list[str]]:
    """The identity with implausible ratings marked."""
    changes: dict[str, Value] = {}
    problems: list[str] = []
    for name, (low, high, unit) in IDENTITY_RANGES.items():
        before = getattr(identity, name)
        after = check_value(before, low, high, unit)
        if after is not before and after is not None:
            changes[name] = after
            problems.append(_problem(name, after))
    # every other identity value must at least be encodable (finite)
    for f in fields(BmsIdentity):
        value = getattr(identity, f.name)
        if f.name in changes or not isinstance(value, Value):
            continue
        if isinstance(value.value, float) and not math.isfinite(value.value):
            changes[f.name] = unavailable(value, str(value.value), "not a number")
            problems.append(_problem(f.name, changes[f.name]))
    return (replace(identity, **changes) if changes else identity), problems  # type: ignore[arg-type]


def _problem(name: str, value: Value) -> str:
    return f"{value.quality} {name} {value.value} {value.unit}: {value.note}".replace("  ", " ")


def assess_reading(reading: BmsReading, chemistry: str | None = None) -> BmsReading:
    """The reading with every implausible or unavailable number marked (idempotent).

    ``chemistry`` defaults to the BMS's own battery type; an ok reading with a marked value
    becomes partial, with one problem line per mark.
    """
    if chemistry is None and reading.identity.battery_type is not None:
        token = reading.identity.battery_type.value
        chemistry = token if isinstance(token, str) else None
    state, state_problems = assess_state(reading.state, chemistry)
    identity, id_problems = assess_identity(reading.identity)
    new = [p for p in (*id_problems, *state_problems) if p not in reading.problems]
    if state is reading.state and identity is reading.identity and not new:
        return reading
    status = reading.status
    if new and status == "ok":
        status = "partial"
    return replace(
        reading,
        status=status,
        identity=identity,
        state=state,
        problems=(*reading.problems, *new),
    )
