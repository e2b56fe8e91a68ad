"""Profile-driven DBC decoding: bit readers, plans, and broadcasters on a virtual bus."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cantools
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edge_agent.bms.can.dbc_decoder import DbcDecoder, bit_reader
from edge_agent.bms.can.dbc_source import plan_for
from edge_agent.bms.can.reading import ReadingBuilder
from edge_agent.bms.profile import load_profile, load_profile_file
from edge_agent.errors import ProfileError
from edge_agent.sim.can_dbc import DbcBroadcasterSimulator, DbcSimConfig
from tests.support.can import (
    channel_fixture,  # noqa: F401 - fixtures
    read,
    value,
    virtual,
)

DATA = Path(__file__).parent / "data"
SERIAL = "DP6S2024A00012345"


def demo_profile():
    return load_profile_file(DATA / "demo-pack.toml")


def demo_values(**extra):
    chunks = [SERIAL.encode().ljust(21, b"\0")[i : i + 7] for i in (0, 7, 14)]
    values = {f"SerialPart{i}": int.from_bytes(c, "little") for i, c in enumerate(chunks)}
    values.update({f"CellV_{i}": 3.300 + 0.01 * i for i in range(1, 7)})
    values.update(
        PackVoltage=19.95,
        PackCurrent=-3.2,
        Soc=80.5,
        Soh=92.0,
        CycleCount=417,
        Temp1=21,
        Temp2=22,
        Temp3=23,
        Temp4=-40,
        InsulationFault=1,
        OverTempFault=0,
    )
    values.update(extra)
    return values


MESSAGES = ("PACK_status", "PACK_cells", "PACK_serial", "PACK_temps")


def test_demo_pack_every_field_with_units(channel):
    plan = plan_for(demo_profile())
    config = DbcSimConfig(
        messages=MESSAGES,
        values=demo_values(),
        period_s=0.002,
        noise_ids=(0x100, 0x7DF, 0x18FF50E5),
    )
    with DbcBroadcasterSimulator(plan.db, config, channel=channel):
        r = read(demo_profile(), virtual(channel))
    assert r.status == "ok", r.problems
    assert value(r.identity.serial) == (SERIAL, "", "dbc:SerialPart0")
    assert value(r.identity.manufacturer) == ("Demo Cells Ltd", "", "profile")
    assert value(r.identity.model) == ("DP-6S", "", "profile")
    s = r.state
    assert value(s.pack_voltage) == (19.9, "V", "dbc:PackVoltage")  # 0.1 V resolution
    assert value(s.current) == (-3.2, "A", "dbc:PackCurrent")
    assert value(s.soc) == (80.5, "%", "dbc:Soc")
    assert value(s.soh) == (92.0, "%", "dbc:Soh")
    assert value(s.cycle_count) == (417.0, "1", "dbc:CycleCount")
    assert s.cell_voltages == (3.31, 3.32, 3.33, 3.34, 3.35, 3.36)
    assert value(s.cell_voltage_spread)[:2] == (0.05, "V")
    assert s.temperatures == (21.0, 22.0, 23.0)  # probe 4 reads -40: "no probe"
    assert value(s.temperature_max) == (23.0, "degC", "derived")
    assert s.faults == ("insulation",)


def test_truncated_frame_gives_partial_reading(channel):
    plan = plan_for(demo_profile())
    config = DbcSimConfig(
        messages=MESSAGES, values=demo_values(), period_s=0.002, truncate={"PACK_status": 3}
    )
    with DbcBroadcasterSimulator(plan.db, config, channel=channel):
        r = read(demo_profile(), virtual(channel), timeout=5.0)
    assert r.status == "partial"
    assert value(r.state.pack_voltage)[0] == 19.9  # fits in the 3 bytes that came
    assert r.state.soc is None and any(
        "not seen on the bus: PackCurrent, Soc, Soh, CycleCount" in p for p in r.problems
    )


def test_silent_bus_and_next_read(channel):
    r = read(
        replace(demo_profile(), dbc=replace(demo_profile().dbc, listen_s=0.5)),
        virtual(channel),
        timeout=3.0,
    )
    assert r.status == "failed" and r.problems[0].startswith(
        "none of the 4 frame ids of profile 'demo-pack' seen"
    )
    plan = plan_for(demo_profile())
    with DbcBroadcasterSimulator(
        plan.db,
        DbcSimConfig(messages=MESSAGES, values=demo_values(), period_s=0.002),
        channel=channel,
    ):
        assert read(demo_profile(), virtual(channel)).status == "ok"


def test_gm_hv_battery_96_cells(channel, shared_data):
    profile = load_profile("gm-hv-battery")
    profile = replace(
        profile,
        dbc=replace(
            profile.dbc, file=str(shared_data / "dbc" / "gm_global_a_high_voltage_management.dbc")
        ),
    )
    plan = plan_for(profile)
    assert len(plan.cells) == 96 and plan.cells[:4] == [
        "Voltage_1_0_A",
        "Voltage_1_0_B",
        "Voltage_1_0_C",
        "Voltage_1_1_A",
    ]
    values = {name: 3.7 + 0.00125 * (i % 40) for i, name in enumerate(plan.cells)}
    values.update(
        {f"Temp_{c}": 20.0 + 0.5 * i for i, c in enumerate("ABCDEFGHI")},
        Pack_Voltage=356.0,
        Pack_Current=-4.5,
    )
    config = DbcSimConfig(
        messages=(
            "Battery_Module_1",
            "Battery_Module_2",
            "Battery_Module_3",
            "Battery_Module_4",
            "Pack_Stats",
            "Battery_temp",
            "Charger_stats",
        ),
        values=values,
        period_s=0.001,
    )
    with DbcBroadcasterSimulator(plan.db, config, channel=channel):
        r = read(profile, virtual(channel))
    assert r.status == "ok", r.problems
    assert value(r.state.pack_voltage) == (356.0, "V", "dbc:Pack_Voltage")
    assert value(r.state.current) == (-4.5, "A", "dbc:Pack_Current")
    assert r.state.cell_voltages == pytest.approx([values[n] for n in plan.cells], abs=1e-6)
    assert r.state.temperatures == tuple(20.0 + 0.5 * i for i in range(9))
    assert value(r.identity.manufacturer)[0] == "GM (LG Chem cells)"


def test_tesla_model3(channel, shared_data):
    profile = load_profile("tesla-model3")
    profile = replace(
        profile, dbc=replace(profile.dbc, file=str(shared_data / "dbc" / "Model3CAN.dbc"))
    )
    plan = plan_for(profile)
    assert plan.cells[:3] == ["Cell0", "Cell1", "Cell2"] and len(plan.cells) == 96
    values = {name: 3.6 + 0.0001 * i for i, name in enumerate(plan.cells)}
    values.update(
        BattVoltage132=345.67,
        SmoothBattCurrent132=-12.3,
        SOCave292=61.3,
        BMS_nominalFullPackEnergy=77.5,
        BattCellTempMax332=31.5,
        BattCellTempMin332=24.0,
        BMS_isolationResistance=4500,
        BMS_diLimpRequest=0,
    )
    messages = tuple(entry.message.name for entry in plan.ids.values())
    with DbcBroadcasterSimulator(
        plan.db, DbcSimConfig(messages=messages, values=values, period_s=0.0005), channel=channel
    ):
        r = read(profile, virtual(channel))
    assert r.status == "ok", r.problems
    s = r.state
    assert value(s.pack_voltage) == (345.67, "V", "dbc:BattVoltage132")
    assert value(s.current) == (-12.3, "A", "dbc:SmoothBattCurrent132")
    assert value(s.soc) == (61.3, "%", "dbc:SOCave292")
    assert value(r.identity.rated_energy) == (77.5, "kWh", "dbc:BMS_nominalFullPackEnergy")
    assert value(s.temperature_max) == (31.5, "degC", "dbc:BattCellTempMax332")
    assert value(s.temperature_min) == (24.0, "degC", "dbc:BattCellTempMin332")
    assert value(s.insulation_resistance) == (4500.0, "kOhm", "dbc:BMS_isolationResistance")
    assert len(s.cell_voltages) == 96 and s.cell_voltages[95] == pytest.approx(3.6095, abs=1e-6)
    assert s.faults == ()


def test_shipped_dbc_copies_match_shared_data(shared_data):
    shipped = Path(load_profile("tesla-model3").path).parent / "dbc"
    for name in (
        "Model3CAN.dbc",
        "gm_global_a_high_voltage_management.dbc",
        "LICENSE.model3dbc",
        "LICENSE.opendbc",
    ):
        assert (shipped / name).read_bytes() == (shared_data / "dbc" / name).read_bytes()


def test_decoder_skips_unrelated_ids_and_keeps_mux_pages():
    plan = plan_for(demo_profile())
    decoder = DbcDecoder(plan)
    db = plan.db
    for i in range(1000):
        decoder.feed(0x300 + i % 50, b"\x00" * 8)
    assert decoder.frames == 0 and not decoder.complete
    for name in MESSAGES:
        msg = db.get_message_by_name(name)
        pages = sorted({p for s in msg.signals for p in (s.multiplexer_ids or [])}) or [None]
        for page in pages:
            vals = {
                s.name: 0
                for s in msg.signals
                if page is None or s.is_multiplexer or page in (s.multiplexer_ids or [])
            }
            if page is not None:
                vals[next(s.name for s in msg.signals if s.is_multiplexer)] = page
            decoder.feed(msg.frame_id, msg.encode(vals, strict=False))
    assert decoder.complete and len(decoder.latest) == 1 + 2 + 3 + 1
    out = ReadingBuilder()
    decoder.apply(out)
    assert "dbc: serial is not printable ASCII" in out.problems[-1] or any(
        "serial" in p for p in out.problems
    )


def test_profile_errors_name_the_problem(tmp_path):
    text = (DATA / "demo-pack.toml").read_text().replace('soc = "Soc"', 'soc = "NoSuchSignal"')
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    (tmp_path / "demo_pack.dbc").write_bytes((DATA / "demo_pack.dbc").read_bytes())
    with pytest.raises(ProfileError, match="NoSuchSignal"):
        plan_for(load_profile_file(bad))
    bad.write_text(text.replace('file = "demo_pack.dbc"', 'file = "missing.dbc"'))
    with pytest.raises(ProfileError, match="not found"):
        plan_for(load_profile_file(bad))
    bad.write_text((DATA / "demo-pack.toml").read_text().replace("listen_s = 2.0", "listen_s = -1"))
    with pytest.raises(ProfileError, match=r"dbc\.listen_s"):
        load_profile_file(bad)


GM = cantools.database.load_file(
    str(
        Path(__file__).resolve().parents[3]
        / "edge_agent/bms/profiles/dbc/gm_global_a_high_voltage_management.dbc"
    )
)
DEMO = cantools.database.load_file(str(DATA / "demo_pack.dbc"))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["Battery_Module_1", "Battery_temp", "PACK_cells", "PACK_serial"]),
    st.binary(min_size=8, max_size=8),
)
def test_bit_reader_matches_cantools(name, data):
    db = GM if name.startswith("Batt") else DEMO
    msg = db.get_message_by_name(name)
    mux = next(s for s in msg.signals if s.is_multiplexer)
    try:
        expected = msg.decode(data, decode_choices=False, scaling=False)[mux.name]
    except Exception:
        assume(False)
    assert bit_reader(mux)(data) == expected
