"""Reconciliation: label vs BMS vs weight vs profile, and the reconciled identity."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from edge_agent.bms.profile import PackProfile, ProfileLimits
from edge_agent.model import BmsIdentity, BmsReading, Check, LabelReading, WeightReading
from edge_agent.station.reconcile import reconcile
from tests.support.station import PACK_CODE, gbt, healthy_bms, healthy_readings, label_with

MAKERS = {"001": ("CATL",)}


def by_name(checks: Iterable[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_agreeing_sources_all_pass_and_identity_merges() -> None:
    rec = reconcile(healthy_readings(), manufacturers=MAKERS)
    checks = by_name(rec.checks)
    assert checks["label.code"].status == "pass"
    assert checks["label_vs_bms.manufacturer"].status == "pass"
    assert checks["label_vs_bms.battery_type"].status == "pass"
    assert checks["label_vs_bms.production_date"].status == "pass"
    assert checks["weight_vs_energy"].status == "pass"
    assert "161 Wh/kg" in checks["weight_vs_energy"].detail
    assert rec.pack.pack_code == PACK_CODE
    assert rec.pack.code_kind == "gbt34014"
    assert rec.pack.vin == "LGXCE6CB5L0123456"
    assert rec.pack.rated_energy_kwh == 96.768
    assert rec.pack.source["production_date"] == "both"
    assert rec.pack.source["vin"] == "bms"


def test_label_bms_mismatch_is_flagged_not_guessed() -> None:
    readings = healthy_readings()
    bms = replace(
        readings.bms,
        identity=replace(readings.bms.identity, manufacturer=gbt("BYD"), battery_type=gbt("ncm")),
    )
    rec = reconcile(replace(readings, bms=bms), manufacturers=MAKERS)
    checks = by_name(rec.checks)
    assert checks["label_vs_bms.manufacturer"].status == "fail"
    assert "BYD" in checks["label_vs_bms.manufacturer"].detail
    assert checks["label_vs_bms.battery_type"].status == "fail"
    # the label's code is kept, the disagreement is recorded, nothing is overwritten
    assert rec.pack.pack_code == PACK_CODE
    assert rec.pack.battery_type == "lfp"
    assert rec.pack.source["battery_type"] == "label"


def test_bms_reporting_a_different_full_code_fails() -> None:
    readings = healthy_readings()
    other = "001PBA1000001NABB7654321"
    bms = replace(readings.bms, identity=replace(readings.bms.identity, serial=gbt(other)))
    checks = by_name(reconcile(replace(readings, bms=bms)).checks)
    assert checks["label_vs_bms.code"].status == "fail"


def test_production_dates_weeks_apart_warn_and_years_apart_fail() -> None:
    readings = healthy_readings()
    for bms_date, expected in (("2020-10-20", "warn"), ("2018-01-01", "fail")):
        bms = replace(
            readings.bms, identity=replace(readings.bms.identity, production_date=gbt(bms_date))
        )
        checks = by_name(reconcile(replace(readings, bms=bms)).checks)
        assert checks["label_vs_bms.production_date"].status == expected


def test_weight_implausible_for_rated_energy() -> None:
    readings = healthy_readings()
    light = replace(readings, weight=WeightReading(status="ok", mass_kg=150.0, stable=True))
    assert by_name(reconcile(light).checks)["weight_vs_energy"].status == "fail"  # 645 Wh/kg
    slightly = replace(readings, weight=WeightReading(status="ok", mass_kg=430.0, stable=True))
    assert by_name(reconcile(slightly).checks)["weight_vs_energy"].status == "warn"  # 225 Wh/kg


def test_missing_sources_give_reasons_not_crashes() -> None:
    readings = replace(
        healthy_readings(),
        bms=BmsReading(status="failed", problems=("BMS did not answer within 5 s",)),
        label=LabelReading(status="failed", problems=("label out of focus",)),
        weight=WeightReading(status="failed", problems=("scale not stable",)),
    )
    rec = reconcile(readings)
    checks = by_name(rec.checks)
    assert checks["bms.read"].status == "fail"
    assert "did not answer" in checks["bms.read"].detail
    assert checks["label.code"].status == "fail"
    assert "out of focus" in checks["label.code"].detail
    assert checks["weight_vs_energy"].status == "skip"
    assert rec.pack.pack_code is None


def test_profile_limits_and_code_vs_profile() -> None:
    profile = PackProfile(
        name="test-lfp",
        transport="can",
        methods=("gbt27930",),
        manufacturer_codes=("03U",),
        battery_type="lfp",
        limits=ProfileLimits(cell_voltage_v=(2.5, 3.65), max_cell_spread_v=0.002),
    )
    rec = reconcile(healthy_readings(), profile=profile)
    checks = by_name(rec.checks)
    assert checks["code_vs_profile.manufacturer"].status == "fail"
    assert checks["code_vs_profile.battery_type"].status == "pass"
    assert checks["bms_vs_profile_limits"].status == "fail"
    assert "cell spread 4 mV" in checks["bms_vs_profile_limits"].detail


def test_rated_energy_from_capacity_times_voltage_only_when_no_energy() -> None:
    bms = healthy_bms()
    bms = replace(bms, identity=BmsIdentity(rated_energy=gbt(50.0, "kWh")))
    readings = replace(healthy_readings(), bms=bms, label=label_with())
    rec = reconcile(readings)
    assert rec.pack.rated_energy_kwh == 50.0
