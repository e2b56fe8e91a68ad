"""The agent and each simulator in separate processes, linked by slcan over a pty null modem."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edge_agent.bms.profile import load_profile, load_profile_file
from tests.support.can import (
    modem_fixture,  # noqa: F401 - fixtures
    read,
    sim_process,
    slcan,
    value,
)

DATA = Path(__file__).parent / "data"


def fast_gbt():
    p = load_profile("gbt27930-generic")
    return replace(
        p,
        gbt27930=replace(
            p.gbt27930, bhm_wait_s=0.5, brm_timeout_s=2.0, bcp_timeout_s=2.0, listen_s=0.5
        ),
    )


def test_gbt_over_slcan(modem):
    with sim_process(
        "--slcan",
        modem.b_path,
        "--cells",
        "100",
        "--cell-voltage",
        "3.3",
        "--serial",
        "A7B9",
        "--manufacturer",
        "CALB",
        "--vin",
        "LB9A32C10P0000042",
        "--fault",
        "insulation",
    ):
        r = read(fast_gbt(), slcan(modem.a_path), timeout=10.0)
    assert r.status == "ok", r.problems
    i, s = r.identity, r.state
    assert value(i.serial) == ("A7B9", "", "gbt27930:BRM")
    assert value(i.manufacturer) == ("CALB", "", "gbt27930:BRM")
    assert value(i.vin) == ("LB9A32C10P0000042", "", "gbt27930:BRM")
    assert value(i.rated_capacity) == (150.0, "Ah", "gbt27930:BRM")
    assert value(i.rated_energy) == (53.3, "kWh", "gbt27930:BCP")
    assert value(i.battery_type) == ("ncm", "", "gbt27930:BRM")
    assert len(s.cell_voltages) == 100 and s.cell_voltages[:3] == (3.3, 3.31, 3.32)
    assert value(s.pack_voltage)[1:] == ("V", "gbt27930:BCS")
    assert value(s.cell_voltage_max) == (3.32, "V", "gbt27930:BMV")
    assert s.faults == ("insulation",)
    assert modem.bitrate_code and set(modem.bitrate_code.values()) == {"5"}  # both at 250 kbit/s


def test_wrong_bitrate_is_no_traffic_then_right_bitrate_works(modem):
    with sim_process("--slcan", modem.b_path, "--bitrate", "500000"):
        r = read(fast_gbt(), slcan(modem.a_path), timeout=3.0)
        assert r.status == "failed"
        assert "at 250000 bit/s" in r.problems[0] and "wrong bitrate" in r.problems[0]
        assert modem.dropped_for_bitrate > 0
    with sim_process("--slcan", modem.b_path, "--bitrate", "250000"):
        assert read(fast_gbt(), slcan(modem.a_path), timeout=10.0).status == "ok"


def test_tp_abort_across_processes(modem):
    with sim_process("--slcan", modem.b_path, "--abort-after", "2"):
        r = read(fast_gbt(), slcan(modem.a_path), timeout=10.0)
    # the simulator aborts the first BRM transfer only; the next one completes
    assert r.status == "ok", r.problems


def test_uds_over_slcan(modem):
    p = load_profile("uds-example-vendor")
    p = replace(p, uds=replace(p.uds, request_timeout_s=1.0))
    with sim_process("--slcan", modem.b_path, "--protocol", "uds"):
        r = read(p, slcan(modem.a_path), timeout=10.0)
    ecu = r.identity.ecu
    assert ecu is not None
    assert value(ecu.serial) == ("BMS0042137755", "", "uds:F18C")
    assert value(r.identity.vin) == ("WVWZZZE1ZPP012345", "", "uds:F190")
    assert value(ecu.manufacturing_date) == ("2022-03-14", "", "uds:F18B")
    assert value(ecu.supplier_software_version) == ("S0815", "", "uds:F195")
    # the simulator has no SOH DID 0x0105: a per-DID problem, the rest is read
    assert r.status == "partial" and r.problems == (
        "uds:0105: negative response 0x31 (RequestOutOfRange)",
    )


def test_dbc_broadcaster_over_slcan(modem):
    serial = b"DP6S2024A00012345".ljust(21, b"\0")
    parts = [
        f"--set=SerialPart{i}={int.from_bytes(serial[i * 7 : (i + 1) * 7], 'little')}"
        for i in range(3)
    ]
    sets = [
        "--set=PackVoltage=21.5",
        "--set=PackCurrent=2.5",
        "--set=Soc=70",
        "--set=Soh=95.5",
        "--set=CycleCount=12",
    ]
    with sim_process(
        "--slcan",
        modem.b_path,
        "--protocol",
        "dbc",
        "--profile",
        str(DATA / "demo-pack.toml"),
        *sets,
        *parts,
    ):
        r = read(load_profile_file(DATA / "demo-pack.toml"), slcan(modem.a_path), timeout=10.0)
    assert r.status == "ok", r.problems
    assert value(r.identity.serial) == ("DP6S2024A00012345", "", "dbc:SerialPart0")
    assert value(r.state.pack_voltage) == (21.5, "V", "dbc:PackVoltage")
    assert value(r.state.soh) == (95.5, "%", "dbc:Soh")
    assert r.state.cell_voltages == (3.6, 3.601, 3.602, 3.603, 3.604, 3.605)
    assert r.state.temperatures == (20.0, 21.0, 22.0, 23.0)


def test_sim_pty_pair_prints_the_agent_end():
    import os
    import subprocess
    import sys

    from tests.support.can import ROOT

    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "sim", "bms-can", "--pty-pair", "--cells", "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("agent side: --interface slcan --channel /dev/pts/")
        assert proc.stdout.readline().startswith("ready")
        r = read(fast_gbt(), slcan(first.split()[-1]), timeout=10.0)
        assert len(r.state.cell_voltages) == 8 and value(r.identity.serial)[0] == "1234"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()
        proc.stderr.close()
