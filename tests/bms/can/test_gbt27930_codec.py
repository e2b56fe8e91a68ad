"""GB/T 27930 decoders against hand-built byte vectors, encoder round trips, and fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.bms.can import gbt27930 as gbt
from edge_agent.bms.can import gbt27930_encode as enc
from edge_agent.errors import FrameError

BRM_41 = (
    bytes.fromhex(
        "010100"  # V1.1
        "03"  # LFP
        "dc05"  # 150.0 Ah
        "e00d"  # 355.2 V
        "42594420"  # "BYD "
        "31323334"  # serial "1234"
        "240603"  # 1985+36 = 2021-06-03
        "390100"  # 313 charges
        "01"  # vehicle-owned
        "ff"  # reserved
    )
    + b"LGXC16DF5N0012345"
)
BRM_49 = BRM_41 + bytes.fromhex("1122334455667788")


def test_ids_of_the_message_table():
    assert gbt.can_id("CHM", source=gbt.CHARGER, dest=gbt.BMS) == 0x1826F456
    assert gbt.can_id("BHM", source=gbt.BMS, dest=gbt.CHARGER) == 0x182756F4
    assert gbt.can_id("CRM", source=gbt.CHARGER, dest=gbt.BMS) == 0x1801F456
    assert gbt.can_id("BRM", source=gbt.BMS, dest=gbt.CHARGER) == 0x1C0256F4
    assert gbt.can_id("BCP", source=gbt.BMS, dest=gbt.CHARGER) == 0x1C0656F4
    assert gbt.can_id("BRO", source=gbt.BMS, dest=gbt.CHARGER) == 0x100956F4
    assert gbt.can_id("BSM", source=gbt.BMS, dest=gbt.CHARGER) == 0x181356F4
    assert gbt.can_id("BMV", source=gbt.BMS, dest=gbt.CHARGER) == 0x1C1556F4
    assert gbt.can_id("BSD", source=gbt.BMS, dest=gbt.CHARGER) == 0x181C56F4
    assert gbt.encode_chm() == b"\x01\x01\x00"
    assert gbt.encode_crm(False)[0] == 0x00 and gbt.encode_crm(True)[0] == 0xAA
    assert len(gbt.encode_crm(True)) == 8


def test_brm_41_byte_form_every_field():
    b = gbt.decode_brm(BRM_41)
    assert b.protocol_version == "V1.1"
    assert b.battery_type == "lfp"
    assert b.rated_capacity_ah == 150.0
    assert b.rated_voltage_v == 355.2
    assert b.manufacturer == "BYD"
    assert b.serial == "1234"
    assert b.production_date == "2021-06-03"
    assert b.charge_count == 313
    assert b.vehicle_owned is True
    assert b.vin == "LGXC16DF5N0012345"
    assert b.software_version is None
    assert b.length == 41 and b.problems == ()


def test_brm_49_byte_form_keeps_software_version_bytes():
    b = gbt.decode_brm(BRM_49)
    assert b.software_version == "1122334455667788"
    assert b.vin == "LGXC16DF5N0012345" and b.problems == ()


def test_brm_mandatory_only_and_odd_lengths():
    b = gbt.decode_brm(BRM_41[:8])
    assert (b.battery_type, b.rated_capacity_ah, b.manufacturer, b.vin) == (
        "lfp",
        150.0,
        None,
        None,
    )
    odd = gbt.decode_brm(BRM_41[:30])
    assert odd.charge_count == 313 and odd.vin is None
    assert "unusual length 30" in odd.problems[0]
    with pytest.raises(FrameError):
        gbt.decode_brm(BRM_41[:7])


def test_brm_binary_serial_bad_date_and_unknown_type():
    raw = bytearray(BRM_41)
    raw[3] = 0x42
    raw[12:16] = (305419896).to_bytes(4, "little")
    raw[17] = 13  # month 13
    b = gbt.decode_brm(bytes(raw))
    assert b.battery_type == "other" and b.serial == "305419896" and b.production_date is None
    assert any("battery type" in p for p in b.problems) and any("date" in p for p in b.problems)


def test_bcp_scaling_and_offsets():
    raw = bytes.fromhex("a401c4091502100e693302e60d")
    b = gbt.decode_bcp(raw)
    assert b.max_cell_charge_voltage_v == 4.20
    assert b.max_charge_current_a == -150.0  # 2500 * 0.1 - 400
    assert b.rated_energy_kwh == 53.3
    assert b.max_charge_voltage_v == 360.0
    assert b.max_temperature_c == 55
    assert b.soc_pct == 56.3
    assert b.pack_voltage_v == 355.8


def test_bcs_cell_bits_and_group():
    raw = bytes.fromhex("e60d7f0f7311381e00")
    b = gbt.decode_bcs(raw)
    assert (b.voltage_v, b.current_a) == (355.8, -3.3)  # 3967 * 0.1 - 400
    assert (b.max_cell_voltage_v, b.max_cell_group) == (3.71, 1)
    assert (b.soc_pct, b.remaining_min) == (56, 30)


@pytest.mark.parametrize(
    ("b6", "b7", "faults", "allowed"),
    [
        (0x00, 0x10, (), True),
        (0x01, 0x10, ("cell_overvoltage",), True),
        (0x02, 0x00, ("cell_undervoltage",), False),
        (0x04 | 0x10 | 0x40, 0x00, ("soc_high", "overcurrent", "overtemperature"), False),
        (
            0x08 | 0x20 | 0x80,
            0x00,
            ("soc_low", "current_unreliable", "temperature_unreliable"),
            False,
        ),
        (0x00, 0x01 | 0x08, ("insulation", "connector_unreliable"), False),
        (0x00, 0x02 | 0x04, ("insulation_unreliable", "connector"), False),
    ],
)
def test_bsm_flags(b6, b7, faults, allowed):
    b = gbt.decode_bsm(bytes((4, 75, 2, 70, 5, b6, b7)))
    assert (b.max_voltage_cell, b.max_temperature_c, b.max_temperature_probe) == (5, 25, 3)
    assert (b.min_temperature_c, b.min_temperature_probe) == (20, 6)
    assert b.faults == faults and b.charge_allowed is allowed


def test_bmv_bmt_bsd():
    assert gbt.decode_bmv(bytes.fromhex("721173015e01")) == (3.70, 3.71, 3.50)
    assert gbt.decode_bmt(bytes((75, 70, 0, 0xFF))) == (25, 20, -50)
    b = gbt.decode_bsd(bytes.fromhex("386d017401464b"))
    assert (b.end_soc_pct, b.min_cell_voltage_v, b.max_cell_voltage_v) == (56, 3.65, 3.72)
    assert (b.min_temperature_c, b.max_temperature_c) == (20, 25)
    assert gbt.decode_bhm(bytes.fromhex("100e")).max_charge_voltage_v == 360.0
    for bad, fn in (
        (b"\x01", gbt.decode_bmv),
        (b"", gbt.decode_bmt),
        (b"\x00" * 6, gbt.decode_bsd),
    ):
        with pytest.raises(FrameError):
            fn(bad)


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(0, 10000),
    voltage=st.integers(0, 7500),
    btype=st.sampled_from(sorted(gbt.BATTERY_TYPE_CODES)),
    maker=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=4),
    vin=st.text("0123456789ABCDEFGHJKLMNPRSTUVWXYZ", min_size=17, max_size=17),
    count=st.integers(0, 2**24 - 2),
    date=st.dates(
        min_value=__import__("datetime").date(1985, 1, 1),
        max_value=__import__("datetime").date(2200, 12, 31),
    ),
    length=st.sampled_from([41, 49]),
)
def test_brm_round_trip(capacity, voltage, btype, maker, vin, count, date, length):
    brm = gbt.Brm(
        protocol_version="V1.1",
        battery_type=btype,
        rated_capacity_ah=capacity / 10,
        rated_voltage_v=voltage / 10,
        manufacturer=maker,
        serial="A1B2",
        production_date=date.isoformat(),
        charge_count=count,
        vehicle_owned=False,
        vin=vin,
        software_version="0011223344556677" if length == 49 else None,
        length=length,
    )
    assert gbt.decode_brm(enc.encode_brm(brm, length=length)) == brm


@settings(max_examples=300, deadline=None)
@given(
    cells=st.lists(st.integers(0, 4095), min_size=1, max_size=256),
    temps=st.lists(st.integers(-50, 204), min_size=1, max_size=128),
)
def test_bmv_bmt_round_trip(cells, temps):
    volts = tuple(c / 100 for c in cells)
    assert gbt.decode_bmv(enc.encode_bmv(volts)) == volts
    assert gbt.decode_bmt(enc.encode_bmt(tuple(temps))) == tuple(temps)


DECODERS = [
    gbt.decode_bhm,
    gbt.decode_brm,
    gbt.decode_bcp,
    gbt.decode_bcs,
    gbt.decode_bsm,
    gbt.decode_bmv,
    gbt.decode_bmt,
    gbt.decode_bsd,
]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(DECODERS), st.binary(max_size=600))
def test_fuzz_decoders_raise_only_frame_error(decoder, data):
    try:
        decoder(data)
    except FrameError:
        pass
