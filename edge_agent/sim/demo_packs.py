"""The packs of ``edge-agent demo``: one healthy, one damaged, one mismatched, one silent, one hot.

Each pack says how its BMS is simulated (GB/T 27930 over a virtual CAN bus or SunSpec over
Modbus TCP), what its label carries, what it weighs and what the technician observes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from edge_agent.bms.can.gbt27930 import Brm


@dataclass(frozen=True, kw_only=True)
class DemoPack:
    """One simulated pack on the bench."""

    title: str
    bms: Literal["gbt27930", "sunspec", "silent"]
    label_code: str
    symbology: str
    degrade: float
    mass_kg: float
    brm: Brm | None = None
    cells: tuple[float, ...] = ()
    faults: tuple[str, ...] = ()
    observations: tuple[str, ...] = ()
    gas_level: float = 0.08
    expect_class: str = ""
    expect_disposition: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _cells(n: int, base: float, step: float) -> tuple[float, ...]:
    return tuple(round(base + step * (i % 7), 3) for i in range(n))


DEMO_PACKS: tuple[DemoPack, ...] = (
    DemoPack(
        title="Second-life LFP storage pack (Modbus, SunSpec 802-805), healthy",
        bms="sunspec",
        label_code="03UPBA2000002NC550000042",
        symbology="code128",
        degrade=0.25,
        mass_kg=575.0,
        expect_class="normal",
        expect_disposition="reuse_candidate",
    ),
    DemoPack(
        title="NCM traction pack (CAN, GB/T 27930): swollen casing, cell undervoltage alarm",
        bms="gbt27930",
        label_code="001PEA3000017NB6F0001234",
        symbology="datamatrix",
        degrade=0.35,
        mass_kg=455.0,
        brm=Brm(
            protocol_version="V1.1",
            battery_type="ncm",
            rated_capacity_ah=150.0,
            rated_voltage_v=355.2,
            manufacturer="CATL",
            serial="7731",
            production_date="2021-06-15",
            charge_count=812,
            vehicle_owned=True,
            vin="LSVAU2180N2183294",
            software_version="0102030405060708",
        ),
        cells=_cells(96, 3.68, 0.004),
        faults=("cell_undervoltage",),  # an insulation fault would be critical (issue 14)
        observations=("swelling",),
        expect_class="damaged_defective",
        expect_disposition="material_recycling",
    ),
    DemoPack(
        title="LFP traction pack (CAN, GB/T 27930): label and BMS disagree",
        bms="gbt27930",
        label_code="001PBA1000001NABB1234567",
        symbology="qr",
        degrade=0.3,
        mass_kg=598.0,
        brm=Brm(
            protocol_version="V1.1",
            battery_type="ncm",
            rated_capacity_ah=280.0,
            rated_voltage_v=345.6,
            manufacturer="BYDC",
            serial="0042",
            production_date="2019-03-02",
            charge_count=1290,
            vehicle_owned=True,
            vin="LGXCE6CB5L0123456",
            software_version="0A0B0C0D0E0F1011",
        ),
        cells=_cells(108, 3.30, 0.002),
        expect_class="normal",
        expect_disposition="expert_review",
    ),
    DemoPack(
        title="Pack with a dead BMS (CAN silent): cannot be diagnosed",
        bms="silent",
        label_code="001PBA1000001NA150009876",
        symbology="qr",
        degrade=0.2,
        mass_kg=587.0,
        expect_class="undiagnosable",
        expect_disposition="material_recycling",
    ),
    DemoPack(
        title="NCM pack that is gassing on the bench: critical",
        bms="gbt27930",
        label_code="001PEA3000017NB6F0005678",
        symbology="qr",
        degrade=0.2,
        mass_kg=449.0,
        brm=Brm(
            protocol_version="V1.1",
            battery_type="ncm",
            rated_capacity_ah=150.0,
            rated_voltage_v=355.2,
            manufacturer="CATL",
            serial="7790",
            production_date="2021-06-15",
        ),
        cells=_cells(96, 3.61, 0.02),
        observations=("odour",),
        gas_level=0.92,
        expect_class="critical",
        expect_disposition="material_recycling",
    ),
)
