"""Declarative register maps (pure): which spans to read, and register image -> BmsReading."""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import fmean

from edge_agent.bms.modbus.profile_sections import ARRAY_TARGETS, RegisterDef, RegisterMapSection
from edge_agent.bms.modbus.registers import (
    decode_integer,
    words_to_float,
    words_to_text,
)
from edge_agent.bms.plausibility import assess_reading
from edge_agent.model import BmsIdentity, BmsReading, BmsState, ReadingStatus, Value

SIGNED = {"u16": "uint16", "i16": "int16", "u32": "uint32", "i32": "int32"}


def spans(section: RegisterMapSection) -> list[tuple[int, int]]:
    """(address, registers) of every defined register, for the read planner."""
    return [(r.address, r.words) for r in section.registers.values()]


def _number(reg: RegisterDef, words: list[int], word_order: str) -> float | int | None:
    little = (reg.word_order or word_order) == "little"
    if reg.type == "f32":
        raw: float | int = words_to_float(words, little_word_first=little)
        if math.isnan(raw) or math.isinf(raw):
            return None
    else:
        raw = decode_integer(SIGNED[reg.type], words, little_word_first=little)
        if reg.not_implemented is not None and raw == reg.not_implemented:
            return None
    if reg.scale == 1 and reg.offset == 0:
        return raw
    return round(raw * reg.scale + reg.offset, 9)


def decode_register(
    reg: RegisterDef, image: Mapping[int, int], word_order: str
) -> str | float | int | tuple[float, ...] | None:
    """Value of one register definition from ``image``; KeyError when registers are missing."""
    words = [image[a] for a in range(reg.address, reg.address + reg.words)]
    if reg.type == "string":
        return words_to_text(words, swap_bytes=reg.swap_bytes) or None
    size = reg.words // reg.count
    values = [_number(reg, words[i * size : (i + 1) * size], word_order) for i in range(reg.count)]
    if reg.field in ARRAY_TARGETS:
        return tuple(float(v) for v in values if v is not None)
    return values[0]


def to_reading(
    section: RegisterMapSection,
    image: Mapping[int, int],
    *,
    profile: str = "",
    problems: tuple[str, ...] = (),
) -> BmsReading:
    """Build the BmsReading from the registers read; missing or unset registers become problems."""
    identity: dict[str, Value] = {}
    state: dict[str, object] = {}
    issues = list(problems)
    for name, reg in section.registers.items():
        try:
            value = decode_register(reg, image, section.word_order)
        except KeyError:
            issues.append(f"{name}: register {reg.address} was not read")
            continue
        if value is None or value == ():
            issues.append(f"{name}: not implemented by the device")
            continue
        area, target = reg.field.split(".", 1)
        if isinstance(value, tuple):
            state[target] = value
            continue
        entry = Value(value=value, unit=reg.unit, method=f"regmap:{name}")
        (identity if area == "identity" else state)[target] = entry
    _derive_cell_summary(state)
    got_any = bool(identity) or any(k for k in state if state[k])
    status: ReadingStatus = "failed" if not got_any else ("partial" if issues else "ok")
    reading = BmsReading(
        status=status,
        transport="modbus",
        methods=("regmap",),
        profile=profile,
        identity=BmsIdentity(**identity),  # type: ignore[arg-type]
        state=BmsState(**state),  # type: ignore[arg-type]
        problems=tuple(issues),
    )
    return assess_reading(reading)  # implausible numbers marked (issue 14)


def _derive_cell_summary(state: dict[str, object]) -> None:
    """Cell min/max/mean/spread from per-cell voltages when the map does not give them."""
    cells = state.get("cell_voltages")
    if isinstance(cells, tuple) and cells:
        derived = {
            "cell_voltage_min": min(cells),
            "cell_voltage_max": max(cells),
            "cell_voltage_mean": fmean(cells),
        }
        for key, number in derived.items():
            state.setdefault(
                key,
                Value(value=round(number, 6), unit="V", method=f"regmap:cell_voltages.{key[13:]}"),
            )
    temps = state.get("temperatures")
    if isinstance(temps, tuple) and temps:
        state.setdefault(
            "temperature_min",
            Value(value=min(temps), unit="degC", method="regmap:temperatures.min"),
        )
        state.setdefault(
            "temperature_max",
            Value(value=max(temps), unit="degC", method="regmap:temperatures.max"),
        )
    high, low = state.get("cell_voltage_max"), state.get("cell_voltage_min")
    if (
        "cell_voltage_spread" not in state
        and isinstance(high, Value)
        and isinstance(low, Value)
        and isinstance(high.value, int | float)
        and isinstance(low.value, int | float)
    ):
        state["cell_voltage_spread"] = Value(
            value=round(float(high.value) - float(low.value), 6),
            unit=high.unit or "V",
            method=f"{high.method}-{low.method.split(':', 1)[-1]}",
        )
