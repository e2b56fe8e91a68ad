"""Triage: transport class per ADR SP 376/377 and disposition, with reasons."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge_agent.model import BmsReading, Check, SensorReading, Value
from edge_agent.station.settings import TriageSettings
from edge_agent.station.triage import triage
from tests.support.station import gbt, healthy_bms, healthy_readings

SETTINGS = TriageSettings()


def test_healthy_pack_is_normal_and_a_reuse_candidate() -> None:
    t = triage(healthy_readings(), [], [], SETTINGS)
    assert (t.transport_class, t.packing_instruction, t.disposition) == (
        "normal",
        "P903",
        "reuse_candidate",
    )
    assert any("SOH 92" in r for r in t.reasons)


@pytest.mark.parametrize("observation", ["swelling", "leak", "damage"])
def test_observed_damage_is_damaged_defective_p908(observation: str) -> None:
    t = triage(healthy_readings(), [], [observation], SETTINGS)
    assert (t.transport_class, t.packing_instruction, t.disposition) == (
        "damaged_defective",
        "P908",
        "material_recycling",
    )
    assert "DAMAGED/DEFECTIVE" in t.next_step


def test_smoke_or_gas_alarm_or_hot_pack_is_critical_p911() -> None:
    assert triage(healthy_readings(), [], ["smoke"], SETTINGS).packing_instruction == "P911"
    readings = replace(healthy_readings(), sensors=SensorReading(status="ok", gas_alarm=True))
    assert triage(readings, [], [], SETTINGS).transport_class == "critical"
    hot = replace(healthy_readings(), bms=healthy_bms(temperature_max=gbt(71.0, "°C", "BSM")))
    t = triage(hot, [], [], SETTINGS)
    assert t.transport_class == "critical"
    assert any("71" in r for r in t.reasons)


def test_odour_and_gas_alarm_are_graded_alike() -> None:
    """The same vapour, noticed by a nose or by the bench sensor, gives the same class."""
    nose = triage(healthy_readings(), [], ["odour"], SETTINGS)
    sensor = replace(healthy_readings(), sensors=SensorReading(status="ok", gas_alarm=True))
    gas = triage(sensor, [], [], SETTINGS)
    assert (nose.transport_class, nose.packing_instruction) == ("critical", "P911")
    assert (gas.transport_class, gas.packing_instruction) == ("critical", "P911")


def test_insulation_fault_is_critical_and_deep_discharge_is_damaged() -> None:
    faulty = replace(healthy_readings(), bms=healthy_bms(faults=("insulation",)))
    assert triage(faulty, [], [], SETTINGS).transport_class == "critical"
    deep = replace(healthy_readings(), bms=healthy_bms(cell_voltage_min=gbt(1.2, "V", "BMV")))
    t = triage(deep, [], [], SETTINGS)
    assert t.transport_class == "damaged_defective"
    assert any("deep discharge" in r for r in t.reasons)


def test_unreadable_bms_is_undiagnosable() -> None:
    readings = replace(
        healthy_readings(), bms=BmsReading(status="failed", problems=("silent bus",))
    )
    t = triage(readings, [], [], SETTINGS)
    assert (t.transport_class, t.packing_instruction, t.disposition) == (
        "undiagnosable",
        "P908",
        "material_recycling",
    )


def test_low_soh_goes_to_recycling_p909_and_mismatch_to_review() -> None:
    worn = replace(healthy_readings(), bms=healthy_bms(soh=gbt(55.0, "%")))
    t = triage(worn, [], [], SETTINGS)
    assert (t.transport_class, t.packing_instruction, t.disposition) == (
        "normal",
        "P909",
        "material_recycling",
    )
    mismatch = [Check(name="label_vs_bms.manufacturer", status="fail", detail="x")]
    t = triage(healthy_readings(), mismatch, [], SETTINGS)
    assert t.disposition == "expert_review"
    assert "label_vs_bms.manufacturer" in t.reasons[-1]


def test_insulation_resistance_without_a_pack_voltage_asks_for_one() -> None:
    bms = healthy_bms(
        pack_voltage=None,
        insulation_resistance=Value(value=50.0, unit="kOhm", method="dbc:Iso"),
    )
    bms = replace(bms, identity=replace(bms.identity, rated_voltage=None))
    t = triage(replace(healthy_readings(), bms=bms), [], [], SETTINGS)
    assert (t.transport_class, t.disposition) == ("normal", "expert_review")
    assert any("pack voltage unknown: cannot judge" in r for r in t.reasons)


def test_a_hot_pack_reported_as_0xff_is_not_critical_but_a_real_one_is() -> None:
    unavailable = Value(
        value="0xFF", unit="degC", method="gbt27930:BSM", quality="unavailable", note="0xFF"
    )
    t = triage(
        replace(healthy_readings(), bms=healthy_bms(temperature_max=unavailable)), [], [], SETTINGS
    )
    assert t.transport_class == "normal" and t.unjudged == ("temperature_max",)
    hot = healthy_bms(temperature_max=gbt(205.0, "degC", "BSM"))  # unmarked: triage marks it
    t = triage(replace(healthy_readings(), bms=hot), [], [], SETTINGS)
    assert (t.transport_class, t.disposition) == ("normal", "expert_review")
    assert any("IR thermometer" in r for r in t.reasons)


def test_bench_sensor_out_of_range_is_not_believed() -> None:
    readings = replace(
        healthy_readings(), sensors=SensorReading(status="ok", temperatures_c=(850.0,))
    )
    t = triage(readings, [], [], SETTINGS)
    assert (t.transport_class, t.disposition) == ("normal", "expert_review")
    assert any("850" in r and "implausible" in r for r in t.reasons)
