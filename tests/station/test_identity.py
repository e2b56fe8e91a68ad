"""The reconciled pack identity: pack-level codes only, component codes kept, the BMS
controller's identity apart from the pack's, a serial only when it is unique."""

from __future__ import annotations

from dataclasses import replace

from edge_agent.codes import parse_identifier
from edge_agent.model import EcuIdentity, LabelCode, LabelReading, Value
from edge_agent.station.reconcile import reconcile
from tests.support.station import PACK_CODE, gbt, healthy_readings, label_with

MAKERS = {"001": ("CATL", "Contemporary Amperex")}
MODULE_CODE = "001MBA1000001NABB0000042"
CELL_CODE = "001CBA1000001NABB0000777"


def _code(text: str) -> LabelCode:
    parsed = parse_identifier(text)
    return LabelCode(
        symbology="DataMatrix", text=text, kind=parsed.kind, fields=parsed.fields_as_text()
    )


def _label(*texts: str) -> LabelReading:
    return LabelReading(status="ok", codes=tuple(_code(t) for t in texts), frames=1)


def _checks(rec: object) -> dict[str, str]:
    return {c.name: c.status for c in rec.checks}  # type: ignore[attr-defined]


def test_module_code_read_before_the_pack_code_is_kept_not_taken_for_the_pack() -> None:
    readings = replace(healthy_readings(), label=_label(MODULE_CODE, PACK_CODE))
    rec = reconcile(readings, manufacturers=MAKERS)
    assert rec.pack.pack_code == PACK_CODE
    assert rec.pack.product_level == "pack"
    assert [(c.code, c.product_level, c.source) for c in rec.pack.component_codes or ()] == [
        (MODULE_CODE, "module", "label")
    ]
    checks = _checks(rec)
    assert checks["label.code"] == "pass"
    assert checks["label.component_codes"] == "warn"


def test_only_a_module_code_gives_no_pack_code() -> None:
    readings = replace(healthy_readings(), label=_label(MODULE_CODE))
    rec = reconcile(readings, manufacturers=MAKERS)
    assert rec.pack.pack_code is None and rec.pack.product_level is None
    assert rec.pack.component_codes is not None
    assert rec.pack.component_codes[0].code == MODULE_CODE
    checks = _checks(rec)
    assert checks["label.code"] == "fail"
    assert checks["label.component_codes"] == "warn"


def test_cell_code_from_the_bms_is_a_component_not_a_mismatch() -> None:
    readings = healthy_readings()
    bms = replace(readings.bms, identity=replace(readings.bms.identity, serial=gbt(CELL_CODE)))
    rec = reconcile(replace(readings, bms=bms), manufacturers=MAKERS)
    assert "label_vs_bms.code" not in _checks(rec)
    assert [(c.code, c.source) for c in rec.pack.component_codes or ()] == [
        (CELL_CODE, "gbt27930:BRM")
    ]
    assert rec.pack.serial is None  # a code is not a serial


def test_pack_code_from_the_bms_when_the_label_has_none() -> None:
    readings = healthy_readings()
    bms = replace(readings.bms, identity=replace(readings.bms.identity, serial=gbt(PACK_CODE)))
    no_label = LabelReading(status="failed", problems=("no frame",))
    rec = reconcile(replace(readings, bms=bms, label=no_label), manufacturers=MAKERS)
    assert rec.pack.pack_code == PACK_CODE and rec.pack.source["pack_code"] == "bms"
    assert rec.pack.product_level == "pack"


def test_manufacturer_code_and_name_are_two_fields() -> None:
    rec = reconcile(healthy_readings(), manufacturers=MAKERS)
    assert (rec.pack.manufacturer_code, rec.pack.manufacturer_name) == ("001", "CATL")
    assert rec.pack.manufacturer == "CATL"  # v1 field: a name, never a bare code
    assert rec.pack.source["manufacturer_code"] == "label"
    assert rec.pack.source["manufacturer_name"] == "bms"
    readings = healthy_readings()
    dead = replace(readings.bms, status="failed")
    rec = reconcile(replace(readings, bms=dead), manufacturers=MAKERS)
    assert (rec.pack.manufacturer_code, rec.pack.manufacturer_name) == ("001", "CATL")
    assert rec.pack.source["manufacturer_name"] == "site"
    rec = reconcile(replace(readings, bms=dead), manufacturers={})
    assert rec.pack.manufacturer_code == "001"
    assert rec.pack.manufacturer is None and rec.pack.manufacturer_name is None


def test_label_daily_sequence_is_not_a_serial_but_the_bms_pack_serial_is() -> None:
    rec = reconcile(healthy_readings(), manufacturers=MAKERS)
    assert rec.pack.serial == "00012345" and rec.pack.source["serial"] == "bms"
    readings = healthy_readings()
    bms = replace(readings.bms, identity=replace(readings.bms.identity, serial=None))
    rec = reconcile(replace(readings, bms=bms), manufacturers=MAKERS)
    assert rec.pack.serial is None  # "1234567", the label's sequence of the day, is not unique


def test_ecu_identity_never_fills_the_pack() -> None:
    readings = healthy_readings()
    ident = replace(
        readings.bms.identity,
        manufacturer=None,
        serial=None,
        production_date=None,
        ecu=EcuIdentity(
            system_supplier_id=Value(value="LGES", method="uds:F18A"),
            manufacturing_date=Value(value="2022-03-14", method="uds:F18B"),
            serial=Value(value="BMS0042137755", method="uds:F18C"),
        ),
    )
    rec = reconcile(replace(readings, bms=replace(readings.bms, identity=ident)), manufacturers={})
    assert rec.pack.manufacturer_name is None and rec.pack.manufacturer is None
    assert rec.pack.serial is None
    assert (
        rec.pack.production_date == "2020-11-11" and rec.pack.source["production_date"] == "label"
    )


def test_rated_capacity_voltage_and_energy() -> None:
    rec = reconcile(healthy_readings(), manufacturers=MAKERS)
    assert (rec.pack.rated_capacity_ah, rec.pack.nominal_voltage_v) == (280.0, 345.6)
    assert rec.pack.rated_energy_kwh == 96.768


def test_extrapolated_label_date_is_marked_and_a_bms_date_wins() -> None:
    day31 = PACK_CODE[:14] + "A30" + PACK_CODE[17:]  # 2020-03-31: day 31 is extrapolated
    readings = replace(healthy_readings(), label=_label(day31))
    bms_less = replace(readings.bms, identity=replace(readings.bms.identity, production_date=None))
    rec = reconcile(replace(readings, bms=bms_less), manufacturers=MAKERS)
    assert rec.pack.pack_code == day31
    assert (rec.pack.production_date, rec.pack.production_date_confidence) == (
        "2020-03-31",
        "extrapolated",
    )
    rec = reconcile(readings, manufacturers=MAKERS)  # the BMS says 2020-11-11 outright
    assert (rec.pack.production_date, rec.pack.production_date_confidence) == (
        "2020-11-11",
        "confirmed",
    )
    assert rec.pack.source["production_date"] == "bms"


def test_unconfirmed_label_chemistry_loses_to_a_definite_bms_one() -> None:
    readings = replace(healthy_readings(), label=label_with(battery_type="unconfirmed:A"))
    rec = reconcile(readings, manufacturers=MAKERS)
    assert rec.pack.battery_type == "lfp" and rec.pack.source["battery_type"] == "bms"
