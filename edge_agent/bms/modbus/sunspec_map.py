"""Map decoded SunSpec models (1, 802, 803, 804, 805) onto the shared ``BmsReading``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from statistics import fmean

from edge_agent.bms.modbus.sunspec_decode import DecodedModel, PointValue
from edge_agent.bms.modbus.sunspec_models import load_model
from edge_agent.bms.modbus.sunspec_reader import SunSpecScan
from edge_agent.model import BmsIdentity, BmsReading, BmsState, ReadingStatus, Value

UNITS = {"C": "degC", "%WHRtg": "%"}  # SunSpec unit names -> the agent's unit names
CHEMISTRY = {1: "lead_acid", 2: "nimh", 3: "nicd", 4: "lithium_ion", 9: "nas", 10: "flow"}
IDENTITY_POINTS = {"manufacturer": "Mn", "model": "Md", "serial": "SN", "software_version": "Vr"}
STATE_802 = {
    "pack_voltage": "V",
    "current": "A",
    "soc": "SoC",
    "soh": "SoH",
    "cycle_count": "NCyc",
    "cell_voltage_max": "CellVMax",
    "cell_voltage_min": "CellVMin",
    "cell_voltage_mean": "CellVAvg",
}


def _value(model_id: int, point: PointValue | None, unit: str | None = None) -> Value | None:
    if point is None or point.value is None:
        return None
    return Value(
        value=point.value,
        unit=unit if unit is not None else UNITS.get(point.units, point.units),
        method=f"sunspec:{model_id}.{point.name}",
    )


def _first(models: tuple[DecodedModel, ...], model_id: int) -> DecodedModel | None:
    return next((m for m in models if m.id == model_id), None)


def _identity(common: DecodedModel | None, base: DecodedModel | None) -> BmsIdentity:
    fields: dict[str, Value | None] = {}
    if common is not None:
        for name, point in IDENTITY_POINTS.items():
            fields[name] = _value(1, common.points.get(point), "")
    if base is not None:
        fields["rated_capacity"] = _value(802, base.points.get("AHRtg"))
        energy = base.points.get("WHRtg")
        if energy is not None and isinstance(energy.value, int | float):
            fields["rated_energy"] = Value(
                value=round(energy.value / 1000.0, 6), unit="kWh", method="sunspec:802.WHRtg"
            )
        kind = base.points.get("Typ")
        if kind is not None and isinstance(kind.raw, int) and kind.raw in CHEMISTRY:
            fields["battery_type"] = Value(value=CHEMISTRY[kind.raw], method="sunspec:802.Typ")
    return BmsIdentity(**{k: v for k, v in fields.items() if v is not None})  # type: ignore[arg-type]


def _module_serials(modules: list[DecodedModel]) -> dict[str, Value]:
    """805 module serial numbers keyed ``sunspec:805.SN.<string>.<module>``."""
    out: dict[str, Value] = {}
    for module in modules:
        serial = module.value("SN")
        if not isinstance(serial, str) or not serial.strip():
            continue
        key = f"sunspec:805.SN.{module.value('StrIdx')}.{module.value('ModIdx')}"
        out[key] = Value(value=serial.strip(), method=key)
    return out


def _faults(base: DecodedModel) -> tuple[str, ...]:
    """Active Evt1 bits as lower-case symbol names from the official definition."""
    point = base.points.get("Evt1")
    if point is None or not isinstance(point.raw, int):
        return ()
    definition = load_model(802).group.point("Evt1")
    symbols = definition.symbols if definition is not None else ()
    return tuple(name.lower() for name, bit in symbols if point.raw >> bit & 1)


def _cells(modules: list[DecodedModel]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-cell voltages and temperatures of every 805 module, ordered by string then module."""
    voltages: list[float] = []
    temperatures: list[float] = []

    def order(m: DecodedModel) -> tuple[float, float]:
        def num(v: object) -> float:
            return float(v) if isinstance(v, int | float) else 0.0

        return num(m.value("StrIdx")), num(m.value("ModIdx"))

    for module in sorted(modules, key=order):
        for cell in module.repeats:
            v, t = cell["CellV"].value, cell["CellTmp"].value
            if isinstance(v, int | float):
                voltages.append(float(v))
            if isinstance(t, int | float):
                temperatures.append(float(t))
    return tuple(voltages), tuple(temperatures)


def _computed(name: str, value: float, unit: str) -> Value:
    return Value(value=round(value, 6), unit=unit, method=f"sunspec:805.{name}")


def _state(models: tuple[DecodedModel, ...]) -> BmsState:
    base, bank = _first(models, 802), _first(models, 803)
    fields: dict[str, object] = {}
    if base is not None:
        for name, point in STATE_802.items():
            fields[name] = _value(
                802, base.points.get(point), "1" if name == "cycle_count" else None
            )
        fields["faults"] = _faults(base)
    if bank is not None:
        fields["temperature_max"] = _value(803, bank.points.get("ModTmpMax"))
        fields["temperature_min"] = _value(803, bank.points.get("ModTmpMin"))
    voltages, temperatures = _cells([m for m in models if m.id == 805])
    fields["cell_voltages"] = voltages
    fields["temperatures"] = temperatures
    # Fill what the pack summary lacks from the per-cell values (method names say so).
    if voltages:
        fallback = {
            "cell_voltage_max": max(voltages),
            "cell_voltage_min": min(voltages),
            "cell_voltage_mean": fmean(voltages),
        }
        for name, number in fallback.items():
            if fields.get(name) is None:
                fields[name] = _computed(f"CellV.{name.rsplit('_', 1)[1]}", number, "V")
    if temperatures:
        if fields.get("temperature_max") is None:
            fields["temperature_max"] = _computed("CellTmp.max", max(temperatures), "degC")
        if fields.get("temperature_min") is None:
            fields["temperature_min"] = _computed("CellTmp.min", min(temperatures), "degC")
    high, low = fields.get("cell_voltage_max"), fields.get("cell_voltage_min")
    if (
        isinstance(high, Value)
        and isinstance(low, Value)
        and isinstance(high.value, int | float)
        and isinstance(low.value, int | float)
    ):
        fields["cell_voltage_spread"] = Value(
            value=round(float(high.value) - float(low.value), 6),
            unit="V",
            method="sunspec:802.CellVMax-CellVMin",
        )
    return BmsState(**{k: v for k, v in fields.items() if v is not None})  # type: ignore[arg-type]


def to_reading(scan: SunSpecScan, *, profile: str = "") -> BmsReading:
    """Build the BmsReading of one scan; status partial when something was missed."""
    common, base = _first(scan.models, 1), _first(scan.models, 802)
    problems = list(scan.problems)
    if common is None:
        problems.append("no SunSpec common model (1): identity unknown")
    if base is None:
        problems.append("no SunSpec battery base model (802): state unknown")
    status: ReadingStatus = "ok" if not problems else "partial"
    if common is None and base is None:
        status = "failed"
    return BmsReading(
        status=status,
        transport="modbus",
        methods=("sunspec",),
        profile=profile,
        identity=replace(
            _identity(common, base),
            other_ids=_module_serials([m for m in scan.models if m.id == 805]) or None,
        ),
        state=_state(scan.models),
        problems=tuple(problems),
    )


def model_values(model: DecodedModel) -> Mapping[str, object]:
    """Plain ``name -> scaled value`` of a model's fixed points (for CLIs and tests)."""
    return {name: point.value for name, point in model.points.items()}
