"""One vocabulary: every fault name a decoder can emit and every chemistry token is in its table."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from edge_agent.bms.can import gbt27930 as gbt
from edge_agent.bms.can import gbt27930_stop as stop
from edge_agent.bms.can.dbc_decoder import DbcPlan, load_dbc
from edge_agent.bms.chemistry import CHEMISTRIES, GBT27930_CODES, SUNSPEC_TYP, energy_band
from edge_agent.bms.faults import FAULTS, OBSERVATIONS, UNKNOWN, is_known, meaning
from edge_agent.bms.modbus import sunspec_map
from edge_agent.bms.profile import list_profiles, load_profile, load_profile_file
from edge_agent.codes import tables
from edge_agent.errors import FrameError, ProfileError
from edge_agent.station.triage import CRITICAL_OBSERVATIONS, KNOWN_OBSERVATIONS

ROOT = Path(__file__).resolve().parents[2]
TEST_PROFILES = sorted((ROOT / "tests").rglob("*.toml"))


def _profiles() -> list[Path]:
    shipped = list(list_profiles().values())
    return shipped + [p for p in TEST_PROFILES if "name =" in p.read_text(encoding="utf-8")]


def test_every_gbt27930_bsm_flag_is_known() -> None:
    assert gbt.BSM_FAULT_NAMES  # not vacuous
    assert sorted(n for n in gbt.BSM_FAULT_NAMES if n not in FAULTS) == []


def test_every_gbt27930_bst_and_bem_token_is_known() -> None:
    assert {"bst_insulation", "bst_pack_overtemperature"} <= stop.BST_FAULT_NAMES
    assert {"bem_cts_cml_timeout", "bem_other"} <= stop.BEM_FAULT_NAMES
    names = stop.BST_FAULT_NAMES | stop.BEM_FAULT_NAMES
    assert sorted(n for n in names if n not in FAULTS) == []


@pytest.mark.parametrize(
    ("payload", "tokens"),
    [
        (bytes(4), ()),
        (b"\x01\x01\x00\x00", ("bst_soc_reached", "bst_insulation")),
        (b"\x00\x00\x01\x04", ("bst_pack_overtemperature", "bst_voltage_abnormal")),
        (b"\x02\x02\x02\x02", ()),  # 10 = not credible: no report (GB/T 27930 annex C.3)
        (b"\xff\xff\xff\xff", ()),  # 11 = unused, filled with 1
    ],
)
def test_bst_fields_decode_to_tokens(payload: bytes, tokens: tuple[str, ...]) -> None:
    assert stop.decode_bst(payload) == tokens


def test_bem_fields_decode_to_tokens() -> None:
    assert stop.decode_bem(b"\x00\x01\x00\xfc") == ("bem_cts_cml_timeout",)
    assert stop.decode_bem(b"\x00\x00\x00\x04") == ("bem_other",)
    encoded = stop.encode_fields(stop.BEM_FIELDS, ("bem_cro_timeout", "bem_csd_timeout"))
    assert stop.decode_bem(encoded) == ("bem_cro_timeout", "bem_csd_timeout")
    with pytest.raises(FrameError):
        stop.decode_bst(b"\x01\x00")


def test_bst_and_bem_severities() -> None:
    # the agent stops before charging: BEM timeouts and ordinary stop reasons are no defect
    assert {meaning(n).severity for n in stop.BEM_FAULT_NAMES} == {"info"}
    assert meaning("bst_soc_reached").severity == "info"
    assert meaning("bst_insulation").severity == "critical"
    assert meaning("bst_pack_overtemperature").severity == "critical"
    assert meaning("bst_hv_relay_fault").severity == "damaged"


def test_every_sunspec_event_state_and_failure_name_is_known() -> None:
    names = sunspec_map.fault_names()
    assert {"ground_fault", "over_temp_alarm", "contactor_error", "state_fault"} <= names
    assert {"str_ground_fault", "fuse_open", "reserved_1", "current_imbalance_warning"} <= names
    assert sorted(n for n in names if n not in FAULTS) == []


@pytest.mark.parametrize("path", _profiles(), ids=lambda p: p.stem)
def test_every_profile_dbc_fault_token_and_chemistry_is_known(path: Path) -> None:
    try:
        profile = load_profile_file(path)
    except ProfileError:
        pytest.skip("not a pack profile")
    if profile.dbc is not None:
        assert sorted(t for t in profile.dbc.faults if not is_known(t)) == []
    if profile.battery_type:
        assert profile.battery_type in CHEMISTRIES


def test_a_profile_with_a_chemistry_outside_the_table_is_refused(tmp_path: Path) -> None:
    text = (Path(load_profile("byd-batterybox").path)).read_text(encoding="utf-8")
    assert 'battery_type = "lfp"' in text
    bad = tmp_path / "byd-typo.toml"
    bad.write_text(text.replace('battery_type = "lfp"', 'battery_type = "li_polymer"'))
    with pytest.raises(ProfileError, match="li_polymer") as caught:
        load_profile_file(bad)
    assert caught.value.key_path == "byd-typo.battery_type"


def test_a_profile_with_an_unknown_fault_token_is_refused() -> None:
    profile = load_profile("tesla-model3")
    assert profile.dbc is not None
    db = load_dbc(Path(profile.path).parent / profile.dbc.file, strict=profile.dbc.strict)
    bad = replace(profile.dbc, faults={"made_up": "BMS_diLimpRequest"})
    with pytest.raises(ProfileError, match="made_up"):
        DbcPlan(db, bad, name=profile.name)
    DbcPlan(db, profile.dbc, name=profile.name)  # the shipped tokens pass


def test_derived_and_dtc_names_are_known_and_unknown_names_count_as_alarms() -> None:
    assert is_known("cell_imbalance") and is_known("insulation_low")
    assert meaning("dtc:0A1B2C").severity == "damaged"
    assert meaning("no_such_fault") is UNKNOWN and UNKNOWN.severity == "damaged"


@pytest.mark.parametrize(
    ("name", "severity"),
    [
        ("ground_fault", "critical"),
        ("str_ground_fault", "critical"),
        ("insulation", "critical"),
        ("over_temp_alarm", "critical"),
        ("overtemperature", "critical"),
        ("temperature_imbalance_alarm", "critical"),
        ("gas", "critical"),
        ("venting", "critical"),
        ("contactor_error", "damaged"),
        ("state_fault", "damaged"),
        ("cell_undervoltage", "damaged"),
        ("over_volt_alarm", "damaged"),
        ("voltage_imbalance_warning", "review"),
        ("button_pushed", "info"),
    ],
)
def test_severity_follows_standards_section_6(name: str, severity: str) -> None:
    assert meaning(name).severity == severity


def test_every_alarm_is_damaged_at_least_and_thermal_gas_isolation_are_critical() -> None:
    for name, what in FAULTS.items():
        if name.endswith("_alarm") or name.endswith("_fault"):
            assert what.severity in ("critical", "damaged"), name
        words = set(name.split("_"))
        if words & {"ground", "insulation", "isolation", "gas", "venting", "thermal"}:
            assert what.severity == "critical" or "unreliable" in name, name


def test_vapour_is_graded_alike_for_nose_and_sensor() -> None:
    from edge_agent.bms.faults import GAS_ALARM

    assert OBSERVATIONS["odour"].severity == GAS_ALARM.severity == "critical"
    assert "odour" in CRITICAL_OBSERVATIONS and "odour" in KNOWN_OBSERVATIONS


# --- chemistry --------------------------------------------------------------------------------


def test_gbt27930_battery_types_come_from_the_one_table() -> None:
    assert gbt.BATTERY_TYPES == GBT27930_CODES
    assert gbt.BATTERY_TYPES[0x07] == "polymer"
    assert set(gbt.BATTERY_TYPES.values()) <= set(CHEMISTRIES)


def test_sunspec_typ_and_label_letters_use_table_tokens() -> None:
    assert sunspec_map.CHEMISTRY == SUNSPEC_TYP
    assert SUNSPEC_TYP[4] == "lithium_ion"
    assert set(tables.BATTERY_TYPES.values()) <= set(CHEMISTRIES)


def test_every_decoded_chemistry_has_its_own_weight_band() -> None:
    default = energy_band(None)
    for token in set(GBT27930_CODES.values()) - {"other"}:
        assert energy_band(token) != default or token == "other", token
