"""Scenario table (issue 14, truth of values and faults): protocol, simulator settings and
technician observations -> transport class, packing instruction, disposition and reasons.

Every row runs through the real decoders, reconcile, triage, event building, signing and the
JSON Schema (pure, no network): quick, and close to the decoders. The same situations end to
end, through the simulators and the station agent, are the table in test_scenarios_e2e.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest

from edge_agent.bms.can.gbt27930 import Brm
from edge_agent.bms.profile import load_profile
from edge_agent.model import (
    BmsIdentity,
    BmsReading,
    BmsState,
    IdentificationEvent,
    Readings,
    Value,
)
from edge_agent.sim.can_gbt import DEFAULT_BRM, GbtSimConfig
from edge_agent.sim.modbus_sunspec import SunSpecBattery
from tests.station.truth_cases import (
    GBT_CODE,
    GBT_LFP_CODE,
    SUNSPEC_CODE,
    gbt_reading,
    identify_pure,
    readings_of,
    small_battery,
    sunspec_reading,
)

NCM_LABEL = {"production_date": "2021-06-15", "battery_type": "ncm"}
NCM_KG = 300.0  # 150 Ah x 355.2 V = 53.3 kWh -> 178 Wh/kg
SUNSPEC_KG = 575.0  # 86 kWh -> 150 Wh/kg
BIT = {  # SunSpec 802 Evt1 bits
    "over_temp_alarm": 1,
    "voltage_imbalance_warning": 17,
    "contactor_error": 20,
    "ground_fault": 22,
}
LFP_BRM = replace(DEFAULT_BRM, battery_type="lfp", rated_capacity_ah=100.0, rated_voltage_v=307.2)


@dataclass(frozen=True)
class Row:
    """One scenario: how the BMS is simulated, what else the bench sees, what must come out."""

    name: str
    protocol: str  # "sunspec", "gbt27930", "dbc" (hand-made decoded reading), "none"
    expect: tuple[str, str, str]  # transport class, packing instruction, disposition
    reason: str = ""  # a substring one reason must contain
    battery: SunSpecBattery | None = None
    gbt: GbtSimConfig | None = None
    reading: Callable[[], BmsReading] | None = None
    observations: tuple[str, ...] = ()
    gas_alarm: bool = False
    code: str = ""
    label_fields: dict[str, str] = field(default_factory=dict)
    mass_kg: float = 0.0
    unjudged: tuple[str, ...] = ()
    check: Callable[[IdentificationEvent], None] | None = None

    def readings(self, bms: BmsReading) -> Readings:
        """The bench around ``bms``."""
        code = self.code or {"sunspec": SUNSPEC_CODE}.get(self.protocol, GBT_CODE)
        fields = self.label_fields or ({} if self.protocol == "sunspec" else NCM_LABEL)
        mass = self.mass_kg or (SUNSPEC_KG if self.protocol == "sunspec" else NCM_KG)
        return readings_of(
            bms, code=code, mass_kg=mass, label_fields=fields, gas_alarm=self.gas_alarm
        )

    def decoded(self) -> BmsReading:
        """The BMS reading as the decoders make it (no network)."""
        if self.battery is not None:
            return sunspec_reading(self.battery)
        if self.gbt is not None:
            return gbt_reading(self.gbt)
        assert self.reading is not None
        return self.reading()


def evt(*names: str) -> int:
    return sum(1 << BIT[n] for n in names)


def dbc_reading(*, faults: tuple[str, ...] = (), **state: Value) -> BmsReading:
    """A decoded DBC reading of a healthy 400 V NCM pack (values as the DBC method tags them)."""
    v = lambda x, unit, sig: Value(value=x, unit=unit, method=f"dbc:{sig}")  # noqa: E731
    base = BmsState(
        pack_voltage=v(400.0, "V", "BattVoltage132"),
        soc=v(60.0, "%", "SOCave292"),
        soh=v(90.0, "%", "SOH"),
        cell_voltage_min=v(3.70, "V", "Cell"),
        cell_voltage_max=v(3.72, "V", "Cell"),
        cell_voltage_spread=v(0.02, "V", "Cell"),
        temperature_max=v(25.0, "degC", "BattCellTempMax332"),
        temperature_min=v(21.0, "degC", "BattCellTempMin332"),
        faults=faults,
    )
    return BmsReading(
        status="ok",
        transport="can",
        methods=("dbc",),
        profile="tesla-model3",
        identity=BmsIdentity(
            manufacturer=Value(value="CATL", method="profile"),
            battery_type=Value(value="ncm", method="profile"),
            rated_energy=v(53.3, "kWh", "BMS_nominalFullPackEnergy"),
        ),
        state=replace(base, **state),  # type: ignore[arg-type]
    )


def _nan_soh() -> BmsReading:
    return dbc_reading(soh=Value(value=float("nan"), unit="%", method="dbc:SOH"))


def _temperature_unavailable(event: IdentificationEvent) -> None:
    t = event.readings.bms.state.temperature_max
    assert t is not None and (t.value, t.quality) == ("0xFF", "unavailable")
    assert not any("205" in r for r in event.triage.reasons)
    limits = {c.name: c for c in event.checks}["bms_vs_profile_limits"]
    assert limits.status == "pass", limits.detail


def _soh_marked(event: IdentificationEvent) -> None:
    soh = event.readings.bms.state.soh
    assert soh is not None and (soh.value, soh.quality) == (6500.0, "implausible")
    assert soh.note == "outside 0..100 %"


def _charge_count(event: IdentificationEvent) -> None:
    s = event.readings.bms.state
    assert s.cycle_count is None
    assert s.charge_count is not None and s.charge_count.value == 312


def _polymer(event: IdentificationEvent) -> None:
    assert event.pack.battery_type == "polymer"
    weight = {c.name: c for c in event.checks}["weight_vs_energy"]
    assert "plausible for polymer: 80-300" in weight.detail and weight.status == "pass"


def _bms_chemistry_wins(event: IdentificationEvent) -> None:
    assert (event.pack.battery_type, event.pack.source["battery_type"]) == ("ncm", "bms")


def _label_kept(event: IdentificationEvent) -> None:
    assert (event.pack.battery_type, event.pack.source["battery_type"]) == ("lfp", "label")
    assert {c.name: c.status for c in event.checks}["label_vs_bms.battery_type"] == "fail"


ROWS: tuple[Row, ...] = (
    # --- SunSpec 802/803/804 events and State ---------------------------------------------
    Row("sunspec healthy", "sunspec", ("normal", "P903", "reuse_candidate"), "SOH 96.3",
        battery=small_battery()),
    Row("sunspec ground fault", "sunspec", ("critical", "P911", "material_recycling"),
        "ground_fault", battery=small_battery(events=evt("ground_fault"))),
    Row("sunspec over-temperature alarm", "sunspec", ("critical", "P911", "material_recycling"),
        "over_temp_alarm", battery=small_battery(events=evt("over_temp_alarm"))),
    Row("sunspec contactor error", "sunspec", ("damaged_defective", "P908", "material_recycling"),
        "contactor_error", battery=small_battery(events=evt("contactor_error"))),
    Row("sunspec State = 99 FAULT", "sunspec", ("damaged_defective", "P908", "material_recycling"),
        "state_fault", battery=small_battery(state=99)),
    Row("sunspec voltage imbalance warning", "sunspec", ("normal", "P903", "expert_review"),
        "voltage_imbalance_warning", battery=small_battery(events=evt("voltage_imbalance_warning"))),
    Row("sunspec 804 string over-temperature", "sunspec", ("critical", "P911", "material_recycling"),
        "over_temp_alarm", battery=small_battery(extra={804: {"Evt1": 1 << 1}})),
    Row("sunspec 803 string ground fault", "sunspec", ("critical", "P911", "material_recycling"),
        "ground_fault", battery=small_battery(string_events=1 << 22)),
    Row("sunspec 804 string fuse open", "sunspec", ("damaged_defective", "P908", "material_recycling"),
        "fuse_open", battery=small_battery(extra={804: {"ConFail": 5}})),
    Row("sunspec vendor event bits", "sunspec", ("normal", "P903", "expert_review"),
        "vendor_event", battery=small_battery(extra={802: {"EvtVnd1": 4}})),
    Row("sunspec SOH 6500 %", "sunspec", ("normal", "P903", "expert_review"),
        "could not judge soh: reported 6500.0 %", battery=small_battery(soh=6500.0),
        unjudged=("soh",), check=_soh_marked),
    Row("sunspec SOC 250 %", "sunspec", ("normal", "P903", "expert_review"),
        "open-circuit voltage", battery=small_battery(soc=250.0), unjudged=("soc",)),
    Row("sunspec module temperature 300 degC", "sunspec", ("normal", "P903", "expert_review"),
        "surface temperature", battery=small_battery(extra={803: {"ModTmpMax": 300.0}}),
        unjudged=("temperature_max",)),
    Row("sunspec SOH 55 %", "sunspec", ("normal", "P909", "material_recycling"),
        "SOH 55 % below 70 %", battery=small_battery(soh=55.0)),
    # --- GB/T 27930 BSM flags, 0xFF encodings, chemistry ----------------------------------
    Row("gbt healthy ncm (no SOH on GB/T)", "gbt27930", ("normal", "P903", "expert_review"),
        "SOH unknown", gbt=GbtSimConfig(), check=_charge_count),
    Row("gbt temperature bytes 0xFF", "gbt27930", ("normal", "P903", "expert_review"),
        "could not judge temperature_max: reported 0xFF",
        gbt=GbtSimConfig(temperatures=(), bsm_temperature_bytes=(0xFF, 0xFF)),
        unjudged=("temperature_min", "temperature_max"), check=_temperature_unavailable),
    Row("gbt cell voltages 0x0FFF (40.95 V)", "gbt27930", ("normal", "P903", "expert_review"),
        "could not judge cell_voltage_min: reported 40.95 V", gbt=GbtSimConfig(cells=(40.95,) * 96),
        unjudged=("pack_voltage", "cell_voltage_min", "cell_voltage_max", "cell_voltage_mean")),
    Row("gbt pack at 70 degC", "gbt27930", ("critical", "P911", "material_recycling"),
        "pack temperature 70", gbt=GbtSimConfig(temperatures=(), bsm_temperature_bytes=(120, 110))),
    Row("gbt insulation flag", "gbt27930", ("critical", "P911", "material_recycling"),
        "insulation", gbt=GbtSimConfig(faults=("insulation",))),
    Row("gbt cell undervoltage flag", "gbt27930", ("damaged_defective", "P908", "material_recycling"),
        "cell_undervoltage", gbt=GbtSimConfig(faults=("cell_undervoltage",))),
    Row("gbt soc low flag", "gbt27930", ("damaged_defective", "P908", "material_recycling"),
        "soc_low", gbt=GbtSimConfig(faults=("soc_low",))),
    Row("gbt temperature not credible", "gbt27930", ("damaged_defective", "P908", "material_recycling"),
        "temperature_unreliable", gbt=GbtSimConfig(faults=("temperature_unreliable",))),
    Row("gbt ncm cell at 2.2 V: deep discharge", "gbt27930",
        ("damaged_defective", "P908", "material_recycling"), "below 2.5 V (deep discharge for ncm)",
        gbt=GbtSimConfig(cells=(2.2, 2.21) * 48)),
    Row("gbt lfp cell at 2.2 V: not deep discharged", "gbt27930", ("normal", "P903", "expert_review"),
        "SOH unknown", gbt=GbtSimConfig(brm=LFP_BRM, cells=(2.2, 2.21) * 48),
        code=GBT_LFP_CODE, label_fields={"production_date": "2021-06-15"}, mass_kg=400.0),
    Row("gbt lfp cell at 1.9 V: deep discharge", "gbt27930",
        ("damaged_defective", "P908", "material_recycling"), "below 2 V (deep discharge for lfp)",
        gbt=GbtSimConfig(brm=LFP_BRM, cells=(1.9, 1.91) * 48),
        code=GBT_LFP_CODE, label_fields={"production_date": "2021-06-15"}, mass_kg=400.0),
    Row("gbt polymer pack", "gbt27930", ("normal", "P903", "expert_review"), "SOH unknown",
        gbt=GbtSimConfig(brm=replace(DEFAULT_BRM, battery_type="polymer")),
        label_fields={"production_date": "2021-06-15", "battery_type": "unconfirmed:A"},
        check=_polymer),
    Row("gbt unconfirmed label letter, definite BMS", "gbt27930", ("normal", "P903", "expert_review"),
        "SOH unknown", gbt=GbtSimConfig(),
        label_fields={"production_date": "2021-06-15", "battery_type": "unconfirmed:C"},
        check=_bms_chemistry_wins),
    Row("gbt label lfp, BMS ncm", "gbt27930", ("normal", "P903", "expert_review"),
        "sources disagree", gbt=GbtSimConfig(),
        label_fields={"production_date": "2021-06-15", "battery_type": "lfp"}, check=_label_kept),
    # --- technician observations and the bench gas sensor ----------------------------------
    Row("odour noticed by the technician", "sunspec", ("critical", "P911", "material_recycling"),
        "solvent odour", battery=small_battery(), observations=("odour",)),
    Row("gas sensor alarm at the bench", "sunspec", ("critical", "P911", "material_recycling"),
        "gas/VOC sensor alarm", battery=small_battery(), gas_alarm=True),
    Row("swollen casing", "sunspec", ("damaged_defective", "P908", "material_recycling"),
        "swelling", battery=small_battery(), observations=("swelling",)),
    Row("electrolyte leak", "sunspec", ("damaged_defective", "P908", "material_recycling"),
        "electrolyte leak", battery=small_battery(), observations=("leak",)),
    # --- DBC fault signals and insulation resistance ---------------------------------------
    Row("dbc insulation 20 kOhm at 400 V", "dbc", ("critical", "P911", "material_recycling"),
        "below 100 ohm/V x 400 V = 40 kOhm",
        reading=lambda: dbc_reading(
            insulation_resistance=Value(value=20.0, unit="kOhm", method="dbc:BMS_isolationResistance")
        )),
    Row("dbc insulation 500 kOhm at 400 V", "dbc", ("normal", "P903", "reuse_candidate"),
        "SOH 90", reading=lambda: dbc_reading(
            insulation_resistance=Value(value=500.0, unit="kOhm", method="dbc:BMS_isolationResistance")
        )),
    Row("dbc limp request", "dbc", ("damaged_defective", "P908", "material_recycling"),
        "limp_request", reading=lambda: dbc_reading(faults=("limp_request",))),
    Row("dbc unknown fault name", "dbc", ("damaged_defective", "P908", "material_recycling"),
        "not in the vocabulary", reading=lambda: dbc_reading(faults=("mystery_flag",))),
    Row("dbc SOH not a number", "dbc", ("normal", "P903", "expert_review"), "SOH unknown",
        reading=_nan_soh, unjudged=("soh",)),
    Row("dbc SOH 108 %", "dbc", ("normal", "P903", "expert_review"), "capacity test needed",
        reading=lambda: dbc_reading(soh=Value(value=108.0, unit="%", method="dbc:SOH")),
        unjudged=("soh",)),
    # --- no BMS ----------------------------------------------------------------------------
    Row("dead BMS with a good label", "none", ("undiagnosable", "P908", "material_recycling"),
        "cannot be diagnosed",
        reading=lambda: BmsReading(status="failed", problems=("BMS did not answer within 5 s",))),
)  # fmt: skip


def _assert_row(row: Row, event: IdentificationEvent) -> None:
    t = event.triage
    assert (t.transport_class, t.packing_instruction, t.disposition) == row.expect, t.reasons
    assert any(row.reason in r for r in t.reasons), t.reasons
    assert tuple(t.unjudged or ()) == row.unjudged, t.unjudged
    if row.check is not None:
        row.check(event)


def _profile(row: Row) -> object:
    return load_profile("gbt27930-generic") if row.protocol == "gbt27930" else None


def test_the_table_has_at_least_30_rows() -> None:
    assert len(ROWS) >= 30
    assert len({r.name for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_scenario_pure(row: Row) -> None:
    readings = row.readings(row.decoded())
    event = identify_pure(readings, row.observations, _profile(row))  # type: ignore[arg-type]
    _assert_row(row, event)


def test_polymer_brm_byte_decodes_to_the_table_token() -> None:
    from edge_agent.bms.can import gbt27930 as gbt
    from edge_agent.bms.can import gbt27930_encode as enc

    brm = gbt.decode_brm(enc.encode_brm(replace(DEFAULT_BRM, battery_type="polymer")))
    assert brm.battery_type == "polymer"
    assert isinstance(DEFAULT_BRM, Brm)
