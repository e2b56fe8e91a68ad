"""Nameplate OCR: text-only labels, OCR vs barcode cross-check, time budget, text -> fields."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.codes.nameplate import find_codes, find_fields
from edge_agent.sim.label_nameplate import available_fonts, render_nameplate
from edge_agent.sim.label_render import render_label
from edge_agent.station.reconcile import reconcile
from edge_agent.vision.nameplate_ocr import read_nameplate
from edge_agent.vision.reader import read_frames
from edge_agent.vision.settings import LabelSettings
from tests.conftest import require_real_part

CODE = "001PBS1ABCDEFGA3A0000123"


@pytest.fixture(scope="module", autouse=True)
def _parts() -> None:
    if not available_fonts():
        require_real_part(False, "CJK fonts (apt install fonts-noto-cjk fonts-wqy-microhei)")


def test_code_in_text_validated_and_lookalikes_fixed_only_when_unique() -> None:
    assert [c.code for c in find_codes([f"编码 Code: {CODE}"])] == [CODE]
    # O for 0 in the serial: the one valid reading with one swap
    (found,) = find_codes([f"Code:{CODE[:-4]}O123"])
    assert (found.code, found.swaps) == (CODE, 1)
    assert found.confidence < 1.0
    # product type position holds a digit: nothing parses, so nothing is returned
    assert find_codes([CODE[:3] + "8" + CODE[4:]]) == []
    assert find_codes(["Rated Voltage: 51.2V", "LITHIUM-ION BATTERY PACK"]) == []


def test_fields_from_chinese_and_english_wording() -> None:
    lines = [
        "三元锂电池包 NCM Battery Pack",
        "额定电压Rated Voltage:58.4V",
        "标称容量: 150Ah",
        "Rated Energy: 8760Wh",
        "重量 Weight: 278kg",
        "制造商：惠州亿纬锂能股份有限公司",
    ]
    got = {f.name: f.value for f in find_fields(lines)}
    assert got == {
        "chemistry": "ncm",
        "rated_voltage_v": "58.4",
        "rated_capacity_ah": "150",
        "rated_energy_kwh": "8.76",
        "mass_kg": "278",
        "manufacturer": "惠州亿纬锂能股份有限公司",
    }


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=5))
def test_text_parsers_never_crash(lines: list[str]) -> None:
    for c in find_codes(lines):
        assert len(c.code) in (19, 24)
    find_fields(lines)


def test_text_only_nameplates_read_with_no_wrong_code() -> None:
    s = LabelSettings(ocr="missing", ocr_budget_ms=8000.0)
    read = 0
    for seed in range(6):
        plate = render_nameplate(seed=seed, degrade=0.5, cascade=seed == 5)
        reading = read_frames([plate.image], s).reading
        codes = {c.text for c in reading.codes}
        assert codes <= {plate.code}, f"wrong code on seed {seed}: {codes}"
        read += plate.code in codes
        if plate.code in codes:
            assert reading.status == "ok"
            code = next(c for c in reading.codes if c.text == plate.code)
            assert code.symbology == "OCR" and len(code.position) == 4
            fields = {f.name: f for f in reading.fields or ()}
            assert fields["pack_code"].source == "ocr"
            assert 0 < fields["pack_code"].confidence <= 1
            assert fields["rated_voltage_v"].value == plate.fields["rated_voltage_v"]
    assert read >= 5


def _plate_with_barcode(printed: str, barcode: str) -> np.ndarray:
    plate = render_nameplate(seed=1, degrade=0.0, code=printed).image
    sym = np.asarray(
        zxingcpp.create_barcode(barcode, zxingcpp.BarcodeFormat.Code128).to_image(scale=2)
    )
    sym = cv2.resize(sym, (sym.shape[1], 90), interpolation=cv2.INTER_NEAREST)
    h, w = sym.shape
    y0, x0 = plate.shape[0] - h - 20, plate.shape[1] - w - 30
    plate[y0 : y0 + h, x0 : x0 + w] = cv2.cvtColor(sym, cv2.COLOR_GRAY2BGR)
    return plate


def test_ocr_and_barcode_disagreeing_is_a_failed_check() -> None:
    other = "001PBS1ABCDEFGA3A0000999"
    frame = _plate_with_barcode(printed=other, barcode=CODE)
    reading = read_frames([frame], LabelSettings(ocr="always", ocr_budget_ms=8000.0)).reading
    assert reading.ocr_check == "fail"
    assert reading.status == "partial"
    assert any("disagree" in p and other in p for p in reading.problems)
    assert [c.text for c in reading.codes] == [CODE]  # the OCR code is not added as a guess
    sources = {(f.value, f.source) for f in reading.fields or () if f.name == "pack_code"}
    assert sources == {(CODE, "barcode"), (other, "ocr")}
    # the station turns it into a failed check
    from tests.support.station import healthy_readings

    readings = dataclasses.replace(healthy_readings(), label=reading)
    checks = {c.name: c.status for c in reconcile(readings).checks}
    assert checks["label.ocr_vs_barcode"] == "fail"


def test_ocr_and_barcode_agreeing_pass() -> None:
    frame = _plate_with_barcode(printed=CODE, barcode=CODE)
    reading = read_frames([frame], LabelSettings(ocr="always", ocr_budget_ms=8000.0)).reading
    assert (reading.ocr_check, reading.status) == ("pass", "ok")


def test_healthy_barcode_label_skips_ocr() -> None:
    frame = render_label(CODE, "qr", seed=1, degrade=0.2)
    reading = read_frames([frame], LabelSettings()).reading
    assert reading.status == "ok"
    assert reading.ocr_check is None
    assert {f.source for f in reading.fields or ()} == {"barcode"}


def test_time_budget_is_honoured() -> None:
    plate = render_nameplate(seed=2, degrade=0.3).image
    for _ in range(2):  # loads the model, measures detection
        read_nameplate(plate, LabelSettings(ocr_budget_ms=8000.0))
    small = read_nameplate(plate, LabelSettings(ocr_budget_ms=50.0))
    assert small.duration_ms < 50.0 + 30.0
    assert small.codes == ()
    assert any("budget" in p for p in small.problems)
