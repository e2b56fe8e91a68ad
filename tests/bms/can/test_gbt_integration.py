"""GB/T 27930 charger emulation against the in-process BMS simulator on a virtual bus."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from edge_agent.bms import read_bms
from edge_agent.bms.can.bus import BusSession
from edge_agent.bms.can.gbt27930_session import GbtSession
from edge_agent.bms.profile import load_profile
from edge_agent.bms.settings import BmsSettings
from edge_agent.errors import BusTimeoutError, TransportError
from edge_agent.sim.can_gbt import DEFAULT_BRM, GbtBmsSimulator
from tests.support.can import (
    channel_fixture,  # noqa: F401 - fixtures
    read,
    value,
    virtual,
)

CELLS = (3.70, 3.71, 3.69, 3.72) * 24
TEMPS = (24, 25, 26, 25, 24, 23, 25, 26)


def fast_profile(**section):
    p = load_profile("gbt27930-generic")
    base = dict(bhm_wait_s=0.5, brm_timeout_s=1.5, bcp_timeout_s=1.5, listen_s=0.4)
    base.update(section)
    return replace(p, gbt27930=replace(p.gbt27930, **base))


def test_full_reading_every_field_and_unit(channel):
    with GbtBmsSimulator(channel=channel, cells=CELLS) as sim:
        r = read("gbt27930-generic", virtual(channel))
    assert r.status == "ok", r.problems
    assert r.transport == "can" and r.methods == ("gbt27930",) and r.profile == "gbt27930-generic"
    i, s = r.identity, r.state
    assert value(i.manufacturer) == ("CATL", "", "gbt27930:BRM")
    assert value(i.serial) == ("1234", "", "gbt27930:BRM")
    assert value(i.vin) == ("LSVAU2180N2183294", "", "gbt27930:BRM")
    assert value(i.production_date) == ("2021-06-15", "", "gbt27930:BRM")
    assert value(i.battery_type) == ("ncm", "", "gbt27930:BRM")
    assert value(i.rated_capacity) == (150.0, "Ah", "gbt27930:BRM")
    assert value(i.rated_voltage) == (355.2, "V", "gbt27930:BRM")
    assert value(i.rated_energy) == (53.3, "kWh", "gbt27930:BCP")
    assert value(i.software_version) == ("0102030405060708", "", "gbt27930:BRM")
    assert value(i.protocol_version) == ("V1.1", "", "gbt27930:BRM")
    assert value(s.pack_voltage) == (355.7, "V", "gbt27930:BCS")
    assert value(s.current) == (-1.5, "A", "gbt27930:BCS")
    assert value(s.soc) == (56.0, "%", "gbt27930:BCS")
    assert value(s.charge_count) == (312, "1", "gbt27930:BRM")  # charges, not cycles
    assert s.cycle_count is None
    assert s.cell_voltages == CELLS
    assert value(s.cell_voltage_min) == (3.69, "V", "gbt27930:BMV")
    assert value(s.cell_voltage_max) == (3.72, "V", "gbt27930:BMV")
    assert value(s.cell_voltage_mean) == (3.705, "V", "gbt27930:BMV")
    assert value(s.cell_voltage_spread) == (0.03, "V", "gbt27930:BMV")
    assert s.temperatures == tuple(float(t) for t in TEMPS)
    assert value(s.temperature_min) == (23.0, "degC", "gbt27930:BSM")
    assert value(s.temperature_max) == (26.0, "degC", "gbt27930:BSM")
    assert s.faults == ()
    assert r.duration_ms is not None and r.duration_ms < 8000
    # the agent never asked for charge: only CHM and CRM went to the BMS, never CRO
    assert set(sim.bms.seen) <= {"CHM", "CRM"} and not sim.bms.cro_ready_seen
    assert sim.bms.seen[0] == "CHM"


def test_41_byte_brm_cell_count_and_faults(channel):
    identity = replace(
        DEFAULT_BRM,
        manufacturer="BYD",
        serial="7788",
        vin="LGXC16DF5N0012345",
        software_version=None,
        battery_type="lfp",
    )
    cells = (3.30,) * 12
    with GbtBmsSimulator(
        channel=channel,
        identity=identity,
        cells=cells,
        brm_length=41,
        faults=("insulation", "cell_overvoltage"),
    ):
        r = read(fast_profile(), virtual(channel))
    assert r.identity.software_version is None
    assert value(r.identity.vin) == ("LGXC16DF5N0012345", "", "gbt27930:BRM")
    assert value(r.identity.battery_type) == ("lfp", "", "gbt27930:BRM")
    assert r.state.cell_voltages == cells
    assert r.state.faults == ("cell_overvoltage", "insulation")
    # 12 cells at 3.3 V give 39.6 V, outside the generic profile's pack-voltage limits
    assert r.status == "partial" and any(
        "pack_voltage 39.6 V outside the profile limits" in p for p in r.problems
    )


def test_without_listening_only_identity_and_bcp(channel):
    with GbtBmsSimulator(channel=channel):
        r = read(fast_profile(listen_s=0.0), virtual(channel))
    assert r.status == "ok", r.problems
    assert value(r.state.pack_voltage) == (355.2, "V", "gbt27930:BCP")
    assert value(r.state.soc) == (56.3, "%", "gbt27930:BCP")
    assert r.state.cell_voltages == ()


def test_silent_bus_fails_in_time_with_reason_then_next_read_works(channel):
    started = time.monotonic()
    with GbtBmsSimulator(channel=channel, silent=True):
        r = read(fast_profile(), virtual(channel), timeout=3.0)
    assert time.monotonic() - started < 3.5
    assert r.status == "failed"
    assert "no frame from BMS address 0xf4" in r.problems[0] and "wrong bitrate" in r.problems[0]
    with GbtBmsSimulator(channel=channel):
        assert read(fast_profile(), virtual(channel)).status == "ok"


def test_typed_errors_from_the_session(channel):
    async def run(**misbehaviour):
        with GbtBmsSimulator(channel=channel, **misbehaviour):
            async with BusSession(virtual(channel)) as bus:
                await GbtSession(bus, fast_profile().gbt27930).run(2.5)

    with pytest.raises(BusTimeoutError):
        asyncio.run(run(silent=True))
    with pytest.raises(TransportError, match="abort reason"):
        asyncio.run(run(abort_after_packets=3, abort_transfers=0))


def test_tp_abort_mid_transfer_every_time_gives_failed_reading(channel):
    with GbtBmsSimulator(channel=channel, abort_after_packets=3, abort_transfers=0) as sim:
        r = read(fast_profile(), virtual(channel), timeout=4.0)
    assert r.status == "failed" and "BRM transfer failed" in r.problems[0]
    assert sim.bms.transfers_aborted >= 2


def test_tp_abort_once_is_recovered_by_the_next_brm(channel):
    with GbtBmsSimulator(channel=channel, abort_after_packets=2, abort_transfers=1) as sim:
        r = read(fast_profile(), virtual(channel))
    assert r.status == "ok", r.problems
    assert sim.bms.transfers_aborted == 1 and sim.bms.transfers_started >= 2
    assert r.identity.vin is not None


def test_missing_and_duplicated_packets(channel):
    with GbtBmsSimulator(channel=channel, drop_packets=(2, 5), duplicate_packets=(3,)):
        r = read(fast_profile(), virtual(channel))
    assert r.status == "ok", r.problems
    assert value(r.identity.vin) == ("LSVAU2180N2183294", "", "gbt27930:BRM")


def test_packet_always_missing_ends_in_transport_error(channel):
    with GbtBmsSimulator(channel=channel, drop_packets=(4,), drop_always=True):
        r = read(fast_profile(), virtual(channel), timeout=4.0)
    assert r.status == "failed" and "BRM transfer failed" in r.problems[0]


def test_dlc_errors_give_partial_reading_with_reasons(channel):
    # BHM with 1 byte, BSM with 5 bytes and a 30-byte BRM
    with GbtBmsSimulator(channel=channel, bhm_length=1, bsm_length=5, brm_length=30):
        r = read(fast_profile(), virtual(channel))
    assert r.status == "partial"
    assert any("unusual length 30" in p for p in r.problems)
    assert value(r.identity.serial) == ("1234", "", "gbt27930:BRM") and r.identity.vin is None
    assert r.state.faults == ()  # the broken BSM was rejected, not misread
    with GbtBmsSimulator(channel=channel):
        assert read(fast_profile(), virtual(channel)).status == "ok"


def test_read_bms_is_the_station_entry_point(channel):
    async def main():
        async with GbtBmsSimulator(channel=channel):
            settings = BmsSettings(can=virtual(channel))
            return await read_bms(load_profile("gbt27930-generic"), settings, 8.0)

    r = asyncio.run(main())
    assert r.status == "ok" and value(r.identity.serial)[0] == "1234"


def test_bam_transfers_are_accepted(channel):
    with GbtBmsSimulator(channel=channel, use_bam=True, cells=(3.5,) * 10) as sim:
        r = read(fast_profile(), virtual(channel))
    assert r.status == "partial"  # 10 cells = 35 V: below the generic pack-voltage limit
    assert value(r.identity.vin) == ("LSVAU2180N2183294", "", "gbt27930:BRM")
    assert r.state.cell_voltages == (3.5,) * 10
    assert sim.bms.transfers_started >= 1
