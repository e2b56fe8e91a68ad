"""SunSpec battery simulator read over loopback TCP and RTU on a pty pair: every value checked."""

from __future__ import annotations

from statistics import fmean

import pytest

from edge_agent.bms.modbus.link import ModbusLink
from edge_agent.bms.modbus.sunspec_models import load_model
from edge_agent.bms.modbus.sunspec_reader import scan
from edge_agent.bms.modbus.sunspec_source import SunSpecSource
from edge_agent.model import Value
from edge_agent.sim.modbus_sunspec import SunSpecBattery, model_point_values
from tests.conftest import require_real_part
from tests.support.bms_modbus import TRANSPORTS, pty_available, run, settings, sunspec_served

BATTERY = SunSpecBattery(strings=2, modules_per_string=3, cells_per_module=4)


def _expect(value: Value | None, number: float | str, unit: str, method: str) -> None:
    assert value is not None, method
    if isinstance(number, float):
        assert value.value == pytest.approx(number, abs=1e-9), method
    else:
        assert value.value == number, method
    assert (value.unit, value.method) == (unit, method)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_model_point_decodes_with_scale_factor_and_unit(transport: str) -> None:
    if transport == "rtu":
        require_real_part(pty_available(), "pty pairs")

    async def go() -> None:
        async with sunspec_served(BATTERY, transport) as (_sim, url):  # type: ignore[arg-type]
            async with ModbusLink(settings(url)) as link:
                result = await scan(link, timeout=10)
        assert result.complete and result.problems == ()
        assert result.base == 40000
        expected = model_point_values(BATTERY)
        assert [m.id for m in result.models] == [e[0] for e in expected]
        checked = 0
        for model, (model_id, values, repeats) in zip(result.models, expected, strict=True):
            definition = load_model(model_id)
            groups = [(model.points, values, definition.group)]
            groups += [
                (got, want, definition.repeating)
                for got, want in zip(model.repeats, repeats, strict=True)
            ]
            assert len(model.repeats) == len(repeats)
            for got, want, group in groups:
                assert group is not None
                for name, number in want.items():
                    point, spec = got[name], group.point(name)
                    assert spec is not None
                    if isinstance(number, float):
                        assert point.value == pytest.approx(number, abs=1e-9), (model_id, name)
                    else:
                        assert point.value == number, (model_id, name)
                    assert point.units == spec.units
                    if isinstance(spec.sf, str):  # the scale factor used is the one the device sent
                        assert point.sf == int(values[spec.sf]), (model_id, name)
                    checked += 1
        assert checked > 300

    run(go())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reading_maps_identity_and_state(transport: str) -> None:
    if transport == "rtu":
        require_real_part(pty_available(), "pty pairs")

    async def go() -> None:
        async with sunspec_served(BATTERY, transport) as (_sim, url):  # type: ignore[arg-type]
            source = SunSpecSource(settings(url), profile="sunspec-battery")
            reading = await source.read(10)
        cells = BATTERY.all_cells()
        volts = [v for v, _ in cells]
        temps = [t for _, t in cells]
        assert reading.status == "ok", reading.problems
        assert (reading.transport, reading.methods, reading.profile) == (
            "modbus",
            ("sunspec",),
            "sunspec-battery",
        )
        ident = reading.identity
        # model 1 names the device (the BMS), never the pack (issue 14)
        assert (ident.manufacturer, ident.model, ident.serial) == (None, None, None)
        device = ident.device
        assert device is not None
        _expect(device.manufacturer, "Example Storage Co", "", "sunspec:1.Mn")
        _expect(device.model, "ESB-LFP-2S", "", "sunspec:1.Md")
        _expect(device.serial, "ESB2026000042", "", "sunspec:1.SN")
        _expect(device.version, "1.4.2", "", "sunspec:1.Vr")
        _expect(device.options, "bench-sim", "", "sunspec:1.Opt")
        _expect(ident.rated_capacity, 280, "Ah", "sunspec:802.AHRtg")
        _expect(ident.rated_energy, 86.0, "kWh", "sunspec:802.WHRtg")
        _expect(ident.battery_type, "lithium_ion", "", "sunspec:802.Typ")
        # every 805 module serial, keyed by string and module (the pack -> module links)
        assert ident.other_ids is not None
        assert len(ident.other_ids) == BATTERY.strings * BATTERY.modules_per_string
        key = "sunspec:805.SN.2.3"
        _expect(ident.other_ids[key], f"{BATTERY.module_serial_prefix}-2-03", "", key)
        st = reading.state
        _expect(st.pack_voltage, BATTERY.pack_voltage(), "V", "sunspec:802.V")
        _expect(st.current, -12.3, "A", "sunspec:802.A")
        _expect(st.soc, 87.5, "%", "sunspec:802.SoC")
        _expect(st.soh, 96.3, "%", "sunspec:802.SoH")
        _expect(st.cycle_count, 412, "1", "sunspec:802.NCyc")
        _expect(st.cell_voltage_max, max(volts), "V", "sunspec:802.CellVMax")
        _expect(st.cell_voltage_min, min(volts), "V", "sunspec:802.CellVMin")
        _expect(st.cell_voltage_mean, round(fmean(volts), 3), "V", "sunspec:802.CellVAvg")
        _expect(
            st.cell_voltage_spread,
            round(max(volts) - min(volts), 6),
            "V",
            "sunspec:802.CellVMax-CellVMin",
        )
        _expect(st.temperature_max, max(temps), "degC", "sunspec:803.ModTmpMax")
        _expect(st.temperature_min, min(temps), "degC", "sunspec:803.ModTmpMin")
        assert st.cell_voltages == pytest.approx(volts)
        assert len(st.cell_voltages) == 2 * 3 * 4
        assert st.temperatures == pytest.approx(temps)
        assert st.faults == ()

    run(go())


@pytest.mark.parametrize("base", [0, 50000])
def test_discovery_at_other_base_addresses(base: int) -> None:
    async def go() -> None:
        battery = SunSpecBattery(strings=1, modules_per_string=1, cells_per_module=2, base=base)
        async with sunspec_served(battery) as (_sim, url):
            async with ModbusLink(settings(url)) as link:
                result = await scan(link, timeout=10)
        assert result.base == base and result.complete
        assert [m.id for m in result.models] == [1, 802, 803, 804, 805]

    run(go())


def test_events_become_fault_tokens_and_summary_falls_back_to_cells() -> None:
    # Evt1 bits 1 (over-temp alarm) and 17 (voltage imbalance); 802 without cell summary points
    battery = SunSpecBattery(
        strings=1,
        modules_per_string=2,
        cells_per_module=3,
        events=(1 << 1) | (1 << 17),
        extra={
            802: {
                "CellVMax": 0xFFFF * 0.001,
                "CellVMin": 0xFFFF * 0.001,
                "CellVAvg": 0xFFFF * 0.001,
            }
        },
    )

    async def go() -> None:
        async with sunspec_served(battery) as (_sim, url):
            reading = await SunSpecSource(settings(url)).read(10)
        volts = [v for v, _ in battery.all_cells()]
        assert reading.state.faults == ("over_temp_alarm", "voltage_imbalance_warning")
        _expect(reading.state.cell_voltage_max, max(volts), "V", "sunspec:805.CellV.max")
        _expect(reading.state.cell_voltage_min, min(volts), "V", "sunspec:805.CellV.min")
        _expect(
            reading.state.cell_voltage_mean, round(fmean(volts), 6), "V", "sunspec:805.CellV.mean"
        )

    run(go())


def test_whole_map_costs_about_one_round_trip_per_125_registers() -> None:
    battery = SunSpecBattery(strings=2, modules_per_string=8, cells_per_module=12)

    async def go() -> None:
        async with sunspec_served(battery) as (sim, url):
            async with ModbusLink(settings(url)) as link:
                result = await scan(link, timeout=10)
                trips, registers = link.round_trips, link.registers_read
        total = sum(h.length + 2 for h in result.headers) + 4
        assert result.complete
        assert registers >= total
        assert trips <= -(-total // 125) + 3  # + discovery, final look-ahead refused, its retry
        assert sim.requests <= trips  # refused look-aheads never reach the data store

    run(go())
