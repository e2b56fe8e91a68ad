"""Assembling a ``BmsReading`` from what one or more methods decoded.

Each method writes values with their unit and method tag into a ``ReadingBuilder``; the first
method to provide a field keeps it (profiles list methods in order of trust). ``build``
derives cell statistics, applies the profile's plausibility limits and sets the status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from statistics import fmean
from typing import TYPE_CHECKING

from edge_agent.bms.plausibility import assess_reading
from edge_agent.model import BmsIdentity, BmsReading, BmsState, ReadingStatus, Value

if TYPE_CHECKING:  # only the type: this module stays free of profile loading
    from edge_agent.bms.profile import ProfileLimits

IDENTITY_FIELDS = frozenset(f.name for f in fields(BmsIdentity)) - {"other_ids", "ecu", "device"}
STATE_FIELDS = frozenset(
    f.name for f in fields(BmsState) if f.name not in {"cell_voltages", "temperatures", "faults"}
)
# fixed unit of every numeric field of the model
UNITS: dict[str, str] = {
    "rated_capacity": "Ah",
    "rated_voltage": "V",
    "rated_energy": "kWh",
    "pack_voltage": "V",
    "current": "A",
    "soc": "%",
    "soh": "%",
    "cell_voltage_min": "V",
    "cell_voltage_max": "V",
    "cell_voltage_mean": "V",
    "cell_voltage_spread": "V",
    "temperature_min": "degC",
    "temperature_max": "degC",
    "cycle_count": "1",
    "charge_count": "1",
    "insulation_resistance": "kOhm",
}


@dataclass
class ReadingBuilder:
    """Mutable collector of decoded values from several methods."""

    transport: str = "can"
    profile: str = ""
    values: dict[str, Value] = field(default_factory=dict)
    others: dict[str, Value] = field(default_factory=dict)  # identifiers beyond the first
    cells: tuple[float, ...] = ()
    cells_method: str = ""
    temperatures: tuple[float, ...] = ()
    faults: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    failed_methods: list[str] = field(default_factory=list)

    def put(self, name: str, value: str | float | bool | None, method: str) -> None:
        """Set field ``name`` unless an earlier method already did; None is ignored. A later
        identifier for a filled identity field is kept in ``other_ids`` under its method."""
        if value is None:
            return
        if name in ECU_FIELDS or name == "ecu":
            self._put_ecu(name, value, method)
            return

        if name not in IDENTITY_FIELDS and name not in STATE_FIELDS:
            raise KeyError(f"unknown reading field {name!r}")
        if name in self.values and self.values[name].quality == "unavailable":
            gone = self.values.pop(name)  # a real value beats a "no data" code
            self.problems.append(f"{name}: {gone.method} sent {gone.value} ({gone.note})")
        if name in self.values:
            kept = self.values[name]
            if name in IDENTITY_FIELDS and method != kept.method and value != kept.value:
                self.others.setdefault(method, Value(value=value, unit=kept.unit, method=method))
            return
        unit = UNITS.get(name, "")
        if isinstance(value, float) and unit:
            value = round(value, 6)
        self.values[name] = Value(value=value, unit=unit, method=method)

    def put_unavailable(self, name: str, raw: str, method: str, note: str) -> None:
        """Record that ``name`` came as the protocol's "no data" code ``raw`` (first method
        wins; a later method with a real value still cannot replace it, so the evidence stays)."""
        self.put(name, raw, method)
        kept = self.values[name]
        if kept.method == method and kept.value == raw:
            self.values[name] = Value(
                value=raw, unit=kept.unit, method=method, quality="unavailable", note=note
            )

    def put_cells(self, cells: tuple[float, ...], method: str) -> None:
        """Per-cell voltages in BMS index order (first method wins)."""
        if cells and not self.cells:
            self.cells, self.cells_method = cells, method

    def put_temperatures(self, temps: tuple[float, ...]) -> None:
        """Probe temperatures in probe order (first method wins)."""
        if temps and not self.temperatures:
            self.temperatures = temps

    def fault(self, token: str) -> None:
        """Record a fault token once."""
        if token not in self.faults:
            self.faults.append(token)

    def _put_ecu(self, name: str, value: str | float | bool, method: str) -> None:
        """An ECU identifier ("ecu.serial"): text, first method wins, later ones in other_ids."""
        if name not in ECU_FIELDS:
            raise KeyError(f"unknown reading field {name!r}")
        kept = self.values.get(name)
        if kept is None:
            self.values[name] = Value(value=value, method=method)
        elif method != kept.method and value != kept.value:
            self.others.setdefault(method, Value(value=value, method=method))

    def has_data(self) -> bool:
        """True when any value was decoded."""
        return bool(self.values or self.cells or self.temperatures)

    def build(self, limits: ProfileLimits | None = None) -> BmsReading:
        """The final reading: derived cell statistics, limit checks and status."""
        cells = [c for c in self.cells if math.isfinite(c)]
        if cells:
            method = self.cells_method
            lo, hi = min(cells), max(cells)
            self.put("cell_voltage_min", lo, method)
            self.put("cell_voltage_max", hi, method)
            try:
                mean = fmean(cells)
            except OverflowError:  # absurd values near the float limit: plausibility marks them
                mean = sum(c / len(cells) for c in cells)
            self.put("cell_voltage_mean", mean, method)
            self.put("cell_voltage_spread", hi - lo, method)
        elif "cell_voltage_min" in self.values and "cell_voltage_max" in self.values:
            lo_v, hi_v = self.values["cell_voltage_min"], self.values["cell_voltage_max"]
            if isinstance(lo_v.value, float | int) and isinstance(hi_v.value, float | int):
                self.put("cell_voltage_spread", float(hi_v.value) - float(lo_v.value), hi_v.method)
        temps = [t for t in self.temperatures if math.isfinite(t)]
        if temps:
            self.put("temperature_min", float(min(temps)), "derived")
            self.put("temperature_max", float(max(temps)), "derived")
        if limits is not None:
            self._check_limits(limits)

        from edge_agent.model import EcuIdentity

        ecu = {k[4:]: v for k, v in self.values.items() if k in ECU_FIELDS}
        identity = BmsIdentity(
            **{k: v for k, v in self.values.items() if k in IDENTITY_FIELDS},
            other_ids=dict(self.others) or None,
            ecu=EcuIdentity(**ecu) if ecu else None,
            device=None,  # SunSpec model 1 only
        )
        state = BmsState(
            **{k: v for k, v in self.values.items() if k in STATE_FIELDS},
            cell_voltages=self.cells,
            temperatures=self.temperatures,
            faults=tuple(self.faults),
        )
        status: ReadingStatus
        if not self.has_data():
            status = "failed"
        elif self.problems or self.failed_methods:
            status = "partial"
        else:
            status = "ok"
        reading = BmsReading(
            status=status,
            transport=self.transport,
            methods=tuple(self.methods),
            profile=self.profile,
            identity=identity,
            state=state,
            problems=tuple(self.problems),
        )
        return assess_reading(reading)

    def _check_limits(self, limits: ProfileLimits) -> None:
        checks = (
            ("pack_voltage", limits.pack_voltage_v),
            ("cell_voltage_min", limits.cell_voltage_v),
            ("cell_voltage_max", limits.cell_voltage_v),
            ("temperature_min", limits.temperature_c),
            ("temperature_max", limits.temperature_c),
            ("soc", limits.soc_pct),
        )
        for name, bounds in checks:
            value = self.values.get(name)
            if bounds is None or value is None or not isinstance(value.value, int | float):
                continue
            if not bounds[0] <= float(value.value) <= bounds[1]:
                # outside the pack model's window, not physically impossible: still judged
                self.problems.append(
                    f"{name} {value.value} {value.unit} outside the profile limits "
                    f"{bounds[0]:g}..{bounds[1]:g}"
                )
        spread = self.values.get("cell_voltage_spread")
        if (
            limits.max_cell_spread_v is not None
            and spread is not None
            and isinstance(spread.value, float | int)
            and spread.value > limits.max_cell_spread_v
        ):
            self.fault("cell_imbalance")


def _ecu_fields() -> frozenset[str]:
    from edge_agent.model import EcuIdentity

    return frozenset(f"ecu.{f.name}" for f in fields(EcuIdentity))


# the BMS controller's own identity (UDS identification DIDs): "ecu.serial", "ecu.part_number";
# built into ``BmsIdentity.ecu``, never into the pack's fields. ("ecu" and "device" themselves
# are blocks, not in IDENTITY_FIELDS: ``put`` refuses them.)
ECU_FIELDS = _ecu_fields()
