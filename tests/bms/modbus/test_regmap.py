"""Declarative register maps: TOML forms, validation, BYD-style device over TCP and RTU."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from edge_agent.bms import open_bms, read_bms
from edge_agent.bms.modbus.link import ModbusLink
from edge_agent.bms.modbus.profile_sections import RegisterMapSection
from edge_agent.bms.modbus.regmap import to_reading
from edge_agent.bms.modbus.regmap_source import RegisterMapSource, read_register_map
from edge_agent.bms.profile import load_profile, load_profile_file
from edge_agent.bms.settings import BmsSettings
from edge_agent.dataform import from_plain
from edge_agent.errors import ProfileError
from edge_agent.model import Value
from edge_agent.sim.modbus_regmap import BYD_VALUES, byd_device, regmap_device, regmap_registers
from edge_agent.sim.modbus_server import Fault
from edge_agent.sim.modbus_sunspec import SunSpecBattery, sunspec_device
from tests.conftest import require_real_part
from tests.support.bms_modbus import TRANSPORTS, pty_available, run, served, settings

CELL_MAP = """
name = "cell-map"
transport = "modbus"
methods = ["regmap"]

[regmap]
function = "input"
word_order = "little"
max_gap = 4

[regmap.registers.serial]
address = 10
type = "string"
count = 6
swap_bytes = true
field = "identity.serial"

[regmap.registers.cycles]
address = 20
type = "u32"
field = "state.cycle_count"
unit = "1"

[regmap.registers]
current = {address=22, type="i32", word_order="big", scale=0.01, unit="A", field="state.current"}
voltage = { address = 24, type = "f32", unit = "V", field = "state.pack_voltage" }
cells = {address=40, type="u16", count=8, scale=0.001, unit="V", field="state.cell_voltages"}

[regmap.registers.probes]
address = 60
type = "i16"
count = 3
scale = 0.1
offset = -40
unit = "degC"
field = "state.temperatures"

[regmap.registers.soh]
address = 70
field = "state.soh"
unit = "%"
not_implemented = 65535
"""

CELLS = [3.301, 3.305, 3.298, 3.312, 3.300, 3.299, 3.307, 3.303]


def _val(value: Value | None) -> object:
    assert value is not None
    return (value.value, value.unit, value.method)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_byd_style_profile_reads_every_value(transport: str) -> None:
    if transport == "rtu":
        require_real_part(pty_available(), "pty pairs")

    async def go():  # type: ignore[no-untyped-def]
        async with served(byd_device(), transport) as url:  # type: ignore[arg-type]
            source = open_bms(load_profile("byd-batterybox"), BmsSettings(modbus=settings(url)))
            return await source.read(5)

    reading = run(go())
    assert reading.status == "ok", reading.problems
    assert (reading.methods, reading.profile) == (("regmap",), "byd-batterybox")
    ident, st = reading.identity, reading.state
    assert _val(ident.manufacturer) == ("BYD", "", "regmap:manufacturer")
    assert _val(ident.model) == ("BYD Battery-Box Premium HV", "", "regmap:model")
    assert _val(ident.software_version) == ("3.26", "", "regmap:bms_version")
    assert _val(ident.serial) == ("P030T020Z2109180001", "", "regmap:serial")
    assert _val(ident.rated_energy) == (11.04, "kWh", "regmap:rated_energy")
    assert _val(st.soc) == (76.54, "%", "regmap:soc")
    assert _val(st.pack_voltage) == (409.6, "V", "regmap:pack_voltage")
    assert _val(st.temperature_min) == (-2.5, "degC", "regmap:temperature_min")
    assert _val(st.temperature_max) == (18.4, "degC", "regmap:temperature_max")
    assert _val(st.soh) == (99.0, "%", "regmap:soh")


def test_byd_map_costs_three_reads() -> None:
    section = load_profile("byd-batterybox").regmap
    assert section is not None

    async def go() -> int:
        async with served(byd_device()) as url, ModbusLink(settings(url)) as link:
            await read_register_map(link, section, timeout=5)
            return link.round_trips

    assert run(go()) == 3


def test_table_and_inline_table_forms_with_word_orders(tmp_path: Path) -> None:
    path = tmp_path / "cell-map.toml"
    path.write_text(CELL_MAP)
    profile = load_profile_file(path)
    section = profile.regmap
    assert section is not None and set(section.registers) == {
        "serial",
        "cycles",
        "current",
        "voltage",
        "cells",
        "probes",
        "soh",
    }
    values = {
        "serial": "AB12CD34",
        "cycles": 70123,
        "current": -123.45,
        "voltage": 51.25,
        "cells": CELLS,
        "probes": [21.5, 22.0, -3.5],
        "soh": 65535,
    }

    async def go():  # type: ignore[no-untyped-def]
        async with served(regmap_device(section, values)) as url:
            return await read_bms(profile, BmsSettings(modbus=settings(url)), 5)

    reading = run(go())
    assert reading.status == "partial"
    assert reading.problems == ("soh: not implemented by the device",)
    assert _val(reading.identity.serial) == ("AB12CD34", "", "regmap:serial")
    assert _val(reading.state.cycle_count) == (70123, "1", "regmap:cycles")
    assert _val(reading.state.current) == (-123.45, "A", "regmap:current")
    assert _val(reading.state.pack_voltage) == (51.25, "V", "regmap:voltage")
    assert reading.state.cell_voltages == pytest.approx(CELLS)
    assert reading.state.temperatures == pytest.approx([21.5, 22.0, -3.5])
    assert _val(reading.state.cell_voltage_max) == (3.312, "V", "regmap:cell_voltages.max")
    assert _val(reading.state.cell_voltage_min) == (3.298, "V", "regmap:cell_voltages.min")
    assert reading.state.cell_voltage_mean is not None
    assert reading.state.cell_voltage_mean.value == pytest.approx(sum(CELLS) / 8)
    assert reading.state.cell_voltage_spread is not None
    assert reading.state.cell_voltage_spread.value == pytest.approx(0.014)
    assert _val(reading.state.temperature_min) == (-3.5, "degC", "regmap:temperatures.min")
    # word order really matters: the little-endian u32 decodes differently as big-endian
    image = regmap_registers(section, values)
    words = image[10][10:12]
    assert words == [70123 & 0xFFFF, 70123 >> 16]


@pytest.mark.parametrize(
    ("register", "message"),
    [
        ({"address": 1, "field": "state.colour"}, "not a BmsReading field"),
        ({"address": 1, "field": "state.soc", "type": "u64"}, "must be one of"),
        ({"address": 70000, "field": "state.soc"}, "must be 0..65535"),
        ({"address": 1, "field": "state.soc", "count": 2}, "count applies"),
        ({"address": 1, "field": "state.soc", "scale": 0}, "scale must not be 0"),
        ({"address": 1, "field": "state.cell_voltages", "type": "string"}, "needs a numeric type"),
        (
            {"address": 65530, "field": "identity.serial", "type": "string", "count": 10},
            "runs past",
        ),
    ],
)
def test_bad_register_definitions_name_the_key(register: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileError, match=message) as info:
        from_plain(
            RegisterMapSection, {"registers": {"x": register}}, path="p.regmap", error=ProfileError
        )
    assert info.value.key_path.startswith("p.regmap.registers.x")


def test_empty_map_is_rejected() -> None:
    with pytest.raises(ProfileError, match="at least one register"):
        from_plain(RegisterMapSection, {}, path="p.regmap", error=ProfileError)


def test_bridged_gap_refused_by_the_device_falls_back_to_single_reads() -> None:
    section = from_plain(
        RegisterMapSection,
        {
            "max_gap": 20,
            "registers": {
                "soc": {"address": 100, "field": "state.soc", "unit": "%"},
                "soh": {"address": 110, "field": "state.soh", "unit": "%"},
            },
        },
    )
    sim = regmap_device(section, {"soc": 55, "soh": 91}, areas=[(100, 1), (110, 1)])

    async def go():  # type: ignore[no-untyped-def]
        async with served(sim) as url, ModbusLink(settings(url)) as link:
            image, problems = await read_register_map(link, section, timeout=5)
            return to_reading(section, image, problems=problems), link.round_trips

    reading, trips = run(go())
    assert reading.status == "ok"
    assert trips == 3  # bridged read refused, then one read per register
    assert _val(reading.state.soc) == (55, "%", "regmap:soc")


def test_exception_on_one_block_gives_partial_reading() -> None:
    section = load_profile("byd-batterybox").regmap
    assert section is not None

    async def go():  # type: ignore[no-untyped-def]
        async with served(byd_device(faults=[Fault("device_failure", address=303)])) as url:
            return await RegisterMapSource(settings(url), section).read(5)

    reading = run(go())
    assert reading.status == "partial"
    assert reading.identity.serial is not None
    assert reading.state.soc is None
    assert any("device failure" in p for p in reading.problems)
    assert any(p.startswith("soc: register 303 was not read") for p in reading.problems)


def test_dead_device_fails_with_reason() -> None:
    section = load_profile("byd-batterybox").regmap
    assert section is not None

    async def go():  # type: ignore[no-untyped-def]
        async with served(byd_device(faults=[Fault("no_answer")])) as url:
            return await RegisterMapSource(settings(url, timeout_s=0.1, retries=0), section).read(5)

    reading = run(go())
    assert reading.status == "failed"
    assert "read stopped at 102" in reading.problems[0]


def test_profile_with_both_methods_merges_sunspec_first(tmp_path: Path) -> None:
    path = tmp_path / "both.toml"
    path.write_text(
        'name = "both"\ntransport = "modbus"\nmethods = ["sunspec", "regmap"]\n'
        "[regmap.registers]\n"
        'part = { address = 39990, type = "string", count = 4, field = "identity.part_number" }\n'
        'soc = { address = 39994, type = "u16", unit = "%", field = "state.soc" }\n'
    )
    profile = load_profile_file(path)
    battery = SunSpecBattery(strings=1, modules_per_string=1, cells_per_module=2)
    sim = sunspec_device(battery)
    sim.blocks[39990] = [0x5041, 0x5254, 0x2D31, 0, 12]  # "PART-1", soc 12 (ignored: SunSpec wins)

    async def go():  # type: ignore[no-untyped-def]
        async with served(sim) as url:
            return await read_bms(profile, BmsSettings(modbus=settings(url)), 10)

    reading = run(go())
    assert reading.status == "ok", reading.problems
    assert reading.methods == ("sunspec", "regmap")
    assert _val(reading.identity.part_number) == ("PART-1", "", "regmap:part")
    assert _val(reading.state.soc) == (87.5, "%", "sunspec:802.SoC")


def test_profile_for_another_transport_is_rejected() -> None:
    from edge_agent.bms.modbus.profile_source import _sources
    from edge_agent.bms.profile import PackProfile

    bms_settings = BmsSettings(modbus=settings("tcp://h:1"))
    with pytest.raises(ProfileError, match="not modbus"):
        _sources(PackProfile(name="x", transport="can", methods=("dbc",)), bms_settings)
    with pytest.raises(ProfileError, match="not a Modbus method"):
        _sources(PackProfile(name="x", transport="modbus", methods=("uds",)), bms_settings)


_ = BYD_VALUES


@fuzz_settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.integers(0, 0xFFFF), min_size=80, max_size=80),
    holes=st.sets(st.integers(0, 79), max_size=10),
)
def test_decoding_arbitrary_register_images_never_crashes(
    words: list[int], holes: set[int]
) -> None:
    section = from_plain(
        RegisterMapSection,
        {
            "registers": {
                "text": {"address": 0, "type": "string", "count": 8, "field": "identity.serial"},
                "f": {"address": 8, "type": "f32", "field": "state.pack_voltage"},
                "i": {
                    "address": 10,
                    "type": "i32",
                    "word_order": "little",
                    "field": "state.current",
                },
                "u": {"address": 12, "type": "u32", "scale": 0.5, "field": "state.cycle_count"},
                "cells": {
                    "address": 20,
                    "count": 40,
                    "scale": 0.001,
                    "field": "state.cell_voltages",
                },
                "t": {"address": 60, "type": "i16", "count": 4, "field": "state.temperatures"},
            }
        },
    )
    image = {a: w for a, w in enumerate(words) if a not in holes}
    reading = to_reading(section, image)
    assert reading.status in {"ok", "partial", "failed"}
    for value in (reading.state.pack_voltage, reading.state.current, reading.state.cycle_count):
        assert value is None or isinstance(value.value, int | float)
