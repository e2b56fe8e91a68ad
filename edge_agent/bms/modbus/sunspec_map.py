"""Map decoded SunSpec models (1, 802, 803, 804, 805) onto the shared ``BmsReading``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from statistics import fmean

from edge_agent.bms.chemistry import SUNSPEC_TYP
from edge_agent.bms.modbus.sunspec_decode import DecodedModel, PointValue
from edge_agent.bms.modbus.sunspec_models import load_model
from edge_agent.bms.modbus.sunspec_reader import SunSpecScan
from edge_agent.bms.plausibility import assess_reading
from edge_agent.model import BmsIdentity, BmsReading, BmsState, DeviceIdentity, ReadingStatus, Value

UNITS = {"C": "degC", "%WHRtg": "%"}  # SunSpec unit names -> the agent's unit names
CHEMISTRY = SUNSPEC_TYP  # 802 Typ -> chemistry token, from the one chemistry table
STATE_FAULT = 99  # 802 State symbol FAULT
# event bitfields with official symbols: (model, point in the fixed block or string group)
EVENT_POINTS = ((802, "Evt1"), (803, "StrEvt1"), (804, "Evt1"))
VENDOR_POINTS = ("Evt2", "EvtVnd1", "EvtVnd2", "StrEvt2", "StrEvtVnd1", "StrEvtVnd2")
CONNECTION_FAILURES = ((803, "StrConFail"), (804, "ConFail"))  # enum16, 0 = NO_FAILURE
# SunSpec common model 1 -> the device block of the BMS identity
DEVICE_POINTS = {
    "manufacturer": "Mn",
    "model": "Md",
    "serial": "SN",
    "version": "Vr",
    "options": "Opt",
}
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


def _device(common: DecodedModel | None) -> DeviceIdentity | None:
    """Model 1 names the Modbus device (the BMS), not the pack: its maker and serial stay
    out of the pack's identity (issue 14, as UDS F18A/F18C do)."""
    if common is None:
        return None
    fields = {
        name: _value(1, common.points.get(point), "") for name, point in DEVICE_POINTS.items()
    }
    present = {k: v for k, v in fields.items() if v is not None}
    return DeviceIdentity(**present) if present else None


def _identity(common: DecodedModel | None, base: DecodedModel | None) -> BmsIdentity:
    fields: dict[str, Value | DeviceIdentity | None] = {"device": _device(common)}
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


def _symbols(model_id: int, point: str) -> tuple[tuple[str, int], ...]:
    model = load_model(model_id)
    definition = model.group.point(point)
    if definition is None and model.repeating is not None:
        definition = model.repeating.point(point)
    return definition.symbols if definition is not None else ()


def fault_names() -> frozenset[str]:
    """Every fault token ``_faults`` can emit (the fault vocabulary must know each one)."""
    names = {name.lower() for m, p in EVENT_POINTS for name, _ in _symbols(m, p)}
    names |= {name.lower() for m, p in CONNECTION_FAILURES for name, v in _symbols(m, p) if v}
    return frozenset(names | {"state_fault", "vendor_event"})


def _groups(model: DecodedModel) -> list[Mapping[str, PointValue]]:
    return [model.points, *model.repeats]


def _faults(models: tuple[DecodedModel, ...]) -> tuple[str, ...]:
    """Active event bits (802, every 803 string, every 804), State FAULT, string connection
    failures and vendor event bits, as lower-case symbol names of the official definitions."""
    found: list[str] = []

    def add(name: str) -> None:
        if name not in found:
            found.append(name)

    for model in models:
        for model_id, name in EVENT_POINTS:
            if model.id != model_id:
                continue
            symbols = _symbols(model_id, name)
            for group in _groups(model):
                point = group.get(name)
                if point is not None and isinstance(point.raw, int):
                    for symbol, bit in symbols:
                        if point.raw >> bit & 1:
                            add(symbol.lower())
        for model_id, name in CONNECTION_FAILURES:
            if model.id != model_id:
                continue
            names = dict((v, k) for k, v in _symbols(model_id, name))
            for group in _groups(model):
                point = group.get(name)
                if point is not None and isinstance(point.raw, int) and point.raw:
                    add(names.get(point.raw, "string_fault").lower())
        if model.id in (802, 803, 804):
            for group in _groups(model):
                for name in VENDOR_POINTS:
                    point = group.get(name)
                    if point is not None and isinstance(point.raw, int) and point.raw:
                        add("vendor_event")
        if model.id == 802:
            state = model.points.get("State")
            if state is not None and state.raw == STATE_FAULT:
                add("state_fault")
    return tuple(found)


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
    if bank is not None:
        fields["temperature_max"] = _value(803, bank.points.get("ModTmpMax"))
        fields["temperature_min"] = _value(803, bank.points.get("ModTmpMin"))
    fields["faults"] = _faults(models)
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
    reading = BmsReading(
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
    return assess_reading(reading)


def model_values(model: DecodedModel) -> Mapping[str, object]:
    """Plain ``name -> scaled value`` of a model's fixed points (for CLIs and tests)."""
    return {name: point.value for name, point in model.points.items()}
