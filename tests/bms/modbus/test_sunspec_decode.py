"""SunSpec model definitions (from the shipped JSON) and the pure model decoder."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.bms.modbus.sunspec_decode import decode_model
from edge_agent.bms.modbus.sunspec_models import MODELS_DIR, known_models, load_model, parse_model
from edge_agent.errors import SunSpecError
from edge_agent.sim.modbus_sunspec import encode_model

BATTERY_MODELS = (1, 802, 803, 804, 805)


def test_shipped_definitions_are_the_official_files(shared_data: Path) -> None:
    official = shared_data / "sunspec-models"
    for name in [f"model_{m}.json" for m in BATTERY_MODELS] + ["LICENSE"]:
        assert filecmp.cmp(MODELS_DIR / name, official / name, shallow=False), name


def test_layouts_match_the_published_lengths() -> None:
    # 802 length 62; 803 26 + 32 per string; 804 46 + 16 per module; 805 42 + 4 per cell
    assert known_models() == BATTERY_MODELS
    lengths = {m: load_model(m).fixed_length for m in BATTERY_MODELS}
    assert lengths == {1: 66, 802: 62, 803: 26, 804: 46, 805: 42}
    repeats = {m: load_model(m).repeating for m in (803, 804, 805)}
    assert {m: (g.length, g.count) for m, g in repeats.items() if g} == {
        803: (32, "NStr"),
        804: (16, "NMod"),
        805: (4, 0),
    }
    sn = load_model(805).group.point("SN")
    assert sn is not None and (sn.type, sn.size, sn.offset) == ("string", 16, 22)


def test_point_types_scale_factors_and_not_implemented() -> None:
    model = load_model(802)
    words = encode_model(
        model,
        {
            "AHRtg_SF": 0,
            "WHRtg_SF": 1,
            "SoC_SF": -1,
            "V_SF": -1,
            "CellV_SF": -3,
            "A_SF": -2,
            "AHRtg": 280,
            "WHRtg": 86000,
            "SoC": 87.5,
            "V": 409.6,
            "CellVMax": 3.412,
            "A": -12.34,
            "NCyc": 70000,
            "Typ": 4,
        },
    )
    decoded = decode_model(model, words, address=40070)
    assert decoded.value("AHRtg") == 280
    assert decoded.points["WHRtg"].raw == 8600 and decoded.value("WHRtg") == 86000
    assert decoded.value("SoC") == 87.5 and decoded.points["SoC"].units == "%WHRtg"
    assert decoded.value("V") == 409.6 and decoded.points["V"].sf == -1
    assert decoded.value("CellVMax") == 3.412
    assert decoded.value("A") == -12.34  # int16 with negative scale factor
    assert decoded.value("NCyc") == 70000  # uint32 across two registers
    assert decoded.value("Typ") == 4
    assert decoded.value("SoH") is None  # not implemented (0xFFFF)
    assert decoded.value("W") is None  # W_SF not implemented -> W meaningless
    assert decoded.value("Evt1") is None  # bitfield32 0xFFFFFFFF


def test_repeating_groups_use_top_level_scale_factors() -> None:
    model = load_model(805)
    cells = [{"CellV": 3.301 + i / 1000, "CellTmp": -5.5 + i, "CellSt": 0} for i in range(3)]
    words = encode_model(
        model,
        {
            "StrIdx": 1,
            "ModIdx": 2,
            "NCell": 3,
            "V": 9.9,
            "V_SF": -1,
            "CellV_SF": -3,
            "Tmp_SF": -1,
            "SN": "MOD-1-02",
        },
        cells,
    )
    decoded = decode_model(model, words)
    assert decoded.length == 42 + 3 * 4
    assert [c["CellV"].value for c in decoded.repeats] == [3.301, 3.302, 3.303]
    assert [c["CellTmp"].value for c in decoded.repeats] == [-5.5, -4.5, -3.5]
    assert decoded.value("SN") == "MOD-1-02"


def test_count_point_disagreeing_with_length_is_reported() -> None:
    model = load_model(803)
    words = encode_model(model, {"NStr": 3, "SoC_SF": 0}, [{"StrSoC": 50}])
    decoded = decode_model(model, words)
    assert len(decoded.repeats) == 1
    assert any("NStr=3" in p for p in decoded.problems)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda w: w[:-1], "registers given"),
        (lambda w: [803, *w[1:]], "expected 802"),
        (lambda w: [w[0], 10, *w[2:12]], "shorter than its fixed block"),
        (lambda w: [], "shorter than its header"),
    ],
)
def test_malformed_blocks_raise_sunspec_error(mutate, message) -> None:  # type: ignore[no-untyped-def]
    words = encode_model(load_model(802), {"SoC_SF": 0})
    with pytest.raises(SunSpecError, match=message):
        decode_model(load_model(802), mutate(words))


def test_uneven_repeat_length_raises() -> None:
    words = encode_model(load_model(805), {"NCell": 1}, [{"CellV": 1}])
    words[1] += 1
    words.append(0)
    with pytest.raises(SunSpecError, match="not 42"):
        decode_model(load_model(805), words)


def test_scale_factor_out_of_range_gives_no_value() -> None:
    words = encode_model(load_model(802), {"SoC_SF": 0, "SoC": 50})
    sf_offset = load_model(802).group.point("SoC_SF").offset  # type: ignore[union-attr]
    words[sf_offset] = 20
    decoded = decode_model(load_model(802), words)
    assert decoded.value("SoC") is None
    assert any("outside -10..10" in p for p in decoded.problems)


def test_bad_definition_is_a_typed_error() -> None:
    raw = json.loads((MODELS_DIR / "model_802.json").read_text())
    raw["group"]["points"][5]["type"] = "quantum16"
    with pytest.raises(SunSpecError, match="unsupported point type"):
        parse_model(raw)
    with pytest.raises(SunSpecError):
        load_model(12345)


@settings(max_examples=400, deadline=None)
@given(
    model_id=st.sampled_from(BATTERY_MODELS),
    body=st.lists(st.integers(0, 0xFFFF), max_size=400),
    keep_header=st.booleans(),
)
def test_decoder_never_crashes_on_arbitrary_blocks(
    model_id: int, body: list[int], keep_header: bool
) -> None:
    model = load_model(model_id)
    words = [model_id, len(body), *body] if keep_header else body
    try:
        decoded = decode_model(model, words)
    except SunSpecError:
        return
    assert decoded.id == model_id
    for point in decoded.points.values():
        assert point.value is None or isinstance(point.value, int | float | str)
