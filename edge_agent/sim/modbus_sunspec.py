"""A simulated SunSpec battery: models 1, 802, 803, 804 (per string) and 805 (per module).

Register layouts come from the same official JSON definitions the reader uses; values are
given in engineering units and encoded with the model's scale factors. Unset points carry the
SunSpec not-implemented value, as on a real device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from edge_agent.bms.modbus.registers import NOT_IMPLEMENTED, int_to_words, text_to_words
from edge_agent.bms.modbus.sunspec_models import GroupDef, ModelDef, load_model
from edge_agent.errors import SimulatorError
from edge_agent.sim.modbus_server import Fault, ModbusDeviceSim

PointValues = Mapping[str, int | float | str]
Chain = Literal["normal", "truncated", "loop", "no_end"]


def _encode_group(group: GroupDef, values: PointValues, sfs: Mapping[str, int]) -> list[int]:
    words: list[int] = []
    for point in group.points:
        value = values.get(point.name)
        if point.type == "pad":
            words.extend([0] * point.size)
        elif point.type == "string":
            words.extend(text_to_words(str(value or ""), point.size))
        elif value is None:
            words.extend(int_to_words(NOT_IMPLEMENTED.get(point.type, 0), point.size))
        else:
            sf = point.sf if isinstance(point.sf, int) else sfs.get(point.sf or "", 0)
            raw = round(float(value) / 10.0**sf) if point.sf is not None else int(value)
            bits = 16 * point.size
            signed = point.type.startswith("int") or point.type == "sunssf"
            low, high = (
                (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
            )
            if not low <= raw <= high:
                raise SimulatorError(f"{group.name}.{point.name}={value} does not fit {point.type}")
            words.extend(int_to_words(raw, point.size))
    return words


def encode_model(
    model: ModelDef, values: PointValues, repeats: Sequence[PointValues] = ()
) -> list[int]:
    """Registers of one model instance (ID and L included) from engineering values."""
    sfs = {
        p.name: int(values[p.name])
        for p in model.group.points
        if p.type == "sunssf" and p.name in values
    }
    group = model.repeating
    body_len = model.fixed_length + (len(repeats) * group.length if group else 0)
    fixed = _encode_group(model.group, {**values, "ID": model.id, "L": body_len}, sfs)
    words = list(fixed)
    for instance in repeats:
        if group is None:
            raise SimulatorError(f"model {model.id} has no repeating group")
        words.extend(_encode_group(group, instance, sfs))
    return words


def cell_voltage(string: int, module: int, cell: int) -> float:
    """Deterministic, slightly spread cell voltage (V) of the default battery."""
    return round(3.290 + ((string * 131 + module * 17 + cell * 7) % 23) / 1000.0, 3)


def cell_temperature(string: int, module: int, cell: int) -> float:
    """Deterministic cell temperature (degC) of the default battery."""
    return 24.0 + ((string + module * 3 + cell) % 6) * 0.5


@dataclass(frozen=True, kw_only=True)
class SunSpecBattery:
    """What the simulated battery reports; indices in 803/804/805 are 1-based as in SunSpec."""

    manufacturer: str = "Example Storage Co"
    model: str = "ESB-LFP-2S"
    serial: str = "ESB2026000042"
    version: str = "1.4.2"
    options: str = "bench-sim"
    strings: int = 2
    modules_per_string: int = 8
    cells_per_module: int = 12
    rated_ah: float = 280.0
    rated_wh: float = 86000.0
    soc: float = 87.5
    soh: float = 96.3
    cycles: int = 412
    current: float = -12.3
    module_serial_prefix: str = "MOD"
    events: int = 0  # 802 Evt1 bits
    state: int = 3  # 802 State: 3 CONNECTED, 99 FAULT
    string_events: int = 0  # 803 StrEvt1 bits of every string
    base: int = 40000
    chain: Chain = "normal"
    extra: Mapping[int, PointValues] = field(default_factory=dict)  # model id -> overrides

    def cells(self, string: int, module: int) -> list[tuple[float, float]]:
        """(voltage, temperature) of every cell of a module."""
        return [
            (cell_voltage(string, module, c), cell_temperature(string, module, c))
            for c in range(1, self.cells_per_module + 1)
        ]

    def all_cells(self) -> list[tuple[float, float]]:
        """Every cell in string, module, cell order."""
        out: list[tuple[float, float]] = []
        for s in range(1, self.strings + 1):
            for m in range(1, self.modules_per_string + 1):
                out.extend(self.cells(s, m))
        return out

    def pack_voltage(self) -> float:
        """Sum of one string's cell voltages (strings are in parallel), 0.1 V resolution."""
        per_string = [
            sum(v for m in range(1, self.modules_per_string + 1) for v, _ in self.cells(s, m))
            for s in range(1, self.strings + 1)
        ]
        return round(sum(per_string) / len(per_string), 1)


def model_point_values(
    battery: SunSpecBattery,
) -> list[tuple[int, dict[str, int | float | str], list[PointValues]]]:
    """(model id, fixed point values, repeating group values) of every model, in chain order."""
    cells = battery.all_cells()
    volts = [v for v, _ in cells]
    temps = [t for _, t in cells]
    n_mod = battery.modules_per_string
    models: list[tuple[int, dict[str, int | float | str], list[PointValues]]] = []
    models.append(
        (
            1,
            {
                "Mn": battery.manufacturer,
                "Md": battery.model,
                "Opt": battery.options,
                "Vr": battery.version,
                "SN": battery.serial,
                "DA": 1,
            },
            [],
        )
    )
    base: dict[str, int | float | str] = {
        "AHRtg_SF": 0,
        "WHRtg_SF": 1,
        "WChaDisChaMax_SF": 0,
        "SoC_SF": -1,
        "SoH_SF": -1,
        "DoD_SF": -1,
        "V_SF": -1,
        "CellV_SF": -3,
        "A_SF": -1,
        "AMax_SF": 0,
        "W_SF": 0,
        "AHRtg": battery.rated_ah,
        "WHRtg": battery.rated_wh,
        "WChaRteMax": 10000,
        "WDisChaRteMax": 10000,
        "SoC": battery.soc,
        "SoH": battery.soh,
        "NCyc": battery.cycles,
        "ChaSt": 3,
        "LocRemCtl": 1,
        "Typ": 4,
        "State": battery.state,
        "Evt1": battery.events,
        "Evt2": 0,
        "EvtVnd1": 0,
        "EvtVnd2": 0,
        "V": battery.pack_voltage(),
        "CellVMax": max(volts),
        "CellVMin": min(volts),
        "CellVAvg": round(sum(volts) / len(volts), 3),
        "A": battery.current,
        "W": round(battery.current * battery.pack_voltage()),
        "AlmRst": 0,
        "SetOp": 1,
        "SetInvState": 1,
    }
    models.append((802, base, []))
    bank_strings: list[PointValues] = []
    for s in range(1, battery.strings + 1):
        sv = [v for m in range(1, n_mod + 1) for v, _ in battery.cells(s, m)]
        st = [t for m in range(1, n_mod + 1) for _, t in battery.cells(s, m)]
        bank_strings.append(
            {
                "StrNMod": n_mod,
                "StrSt": 0,
                "StrSoC": battery.soc,
                "StrSoH": battery.soh,
                "StrA": round(battery.current / battery.strings, 1),
                "StrCellVMax": max(sv),
                "StrCellVMin": min(sv),
                "StrCellVAvg": round(sum(sv) / len(sv), 3),
                "StrModTmpMax": max(st),
                "StrModTmpMin": min(st),
                "StrModTmpAvg": round(sum(st) / len(st), 1),
                "StrEvt1": battery.string_events,
            }
        )
    models.append(
        (
            803,
            {
                "NStr": battery.strings,
                "NStrCon": battery.strings,
                "ModTmpMax": max(temps),
                "ModTmpMin": min(temps),
                "ModTmpAvg": round(sum(temps) / len(temps), 1),
                "CellV_SF": -3,
                "ModTmp_SF": -1,
                "A_SF": -1,
                "SoH_SF": -1,
                "SoC_SF": -1,
                "V_SF": -1,
            },
            bank_strings,
        )
    )
    for s in range(1, battery.strings + 1):
        mods: list[PointValues] = []
        for m in range(1, n_mod + 1):
            mv = [v for v, _ in battery.cells(s, m)]
            mt = [t for _, t in battery.cells(s, m)]
            mods.append(
                {
                    "ModNCell": battery.cells_per_module,
                    "ModSoC": battery.soc,
                    "ModSoH": battery.soh,
                    "ModCellVMax": max(mv),
                    "ModCellVMin": min(mv),
                    "ModCellVAvg": round(sum(mv) / len(mv), 3),
                    "ModCellTmpMax": max(mt),
                    "ModCellTmpMin": min(mt),
                    "ModCellTmpAvg": round(sum(mt) / len(mt), 1),
                }
            )
        sv = [v for m in range(1, n_mod + 1) for v, _ in battery.cells(s, m)]
        models.append(
            (
                804,
                {
                    "Idx": s,
                    "NMod": n_mod,
                    "St": 0,
                    "SoC": battery.soc,
                    "SoH": battery.soh,
                    "NCyc": battery.cycles,
                    "A": round(battery.current / battery.strings, 1),
                    "V": round(sum(sv), 1),
                    "CellVMax": max(sv),
                    "CellVMin": min(sv),
                    "CellVAvg": round(sum(sv) / len(sv), 3),
                    "ModTmpMax": 30.0,
                    "ModTmpMaxMod": 1,
                    "ModTmpMin": 20.0,
                    "ModTmpMinMod": 1,
                    "ModTmpAvg": 25.0,
                    "Evt1": 0,
                    "SoC_SF": -1,
                    "SoH_SF": -1,
                    "DoD_SF": -1,
                    "A_SF": -1,
                    "V_SF": -1,
                    "CellV_SF": -3,
                    "ModTmp_SF": -1,
                },
                mods,
            )
        )
    for s in range(1, battery.strings + 1):
        for m in range(1, n_mod + 1):
            cells_sm = battery.cells(s, m)
            mv = [v for v, _ in cells_sm]
            mt = [t for _, t in cells_sm]
            models.append(
                (
                    805,
                    {
                        "StrIdx": s,
                        "ModIdx": m,
                        "NCell": battery.cells_per_module,
                        "SoC": battery.soc,
                        "SoH": battery.soh,
                        "NCyc": battery.cycles,
                        "V": round(sum(mv), 2),
                        "CellVMax": max(mv),
                        "CellVMin": min(mv),
                        "CellVAvg": round(sum(mv) / len(mv), 3),
                        "CellTmpMax": max(mt),
                        "CellTmpMin": min(mt),
                        "CellTmpAvg": round(sum(mt) / len(mt), 1),
                        "NCellBal": 0,
                        "SN": f"{battery.module_serial_prefix}-{s}-{m:02d}",
                        "SoC_SF": -1,
                        "SoH_SF": -1,
                        "DoD_SF": -1,
                        "V_SF": -2,
                        "CellV_SF": -3,
                        "Tmp_SF": -1,
                    },
                    [{"CellV": v, "CellTmp": t, "CellSt": 0} for v, t in cells_sm],
                )
            )
    for model_id, values, _ in models:
        values.update(battery.extra.get(model_id, {}))
    return models


def sunspec_registers(battery: SunSpecBattery) -> list[int]:
    """The whole SunSpec map from ``battery.base``: marker, models, end (per ``battery.chain``)."""
    words = [0x5375, 0x6E53]
    for model_id, values, repeats in model_point_values(battery):
        words.extend(encode_model(load_model(model_id), values, repeats))
    if battery.chain == "normal":
        words.extend([0xFFFF, 0])
    elif battery.chain == "loop":
        words.extend([0x5375, 0x6E53])  # address decoding wraps: the map starts over
    elif battery.chain == "truncated":
        words = words[: len(words) - 30]  # the last module model is cut short, no end marker
    return words


def sunspec_device(
    battery: SunSpecBattery | None = None, *, device_id: int = 1, faults: Sequence[Fault] = ()
) -> ModbusDeviceSim:
    """A ``ModbusDeviceSim`` serving the battery's SunSpec map (start_tcp/start_rtu_pty)."""
    battery = battery or SunSpecBattery()
    if not 0 <= battery.base <= 0xFFFF:
        raise SimulatorError(f"base address {battery.base} outside 0..65535")
    words = sunspec_registers(battery)
    if battery.base + len(words) > 0x10000:
        raise SimulatorError("SunSpec map does not fit in the register space")
    return ModbusDeviceSim({battery.base: words}, device_id=device_id, faults=faults)
