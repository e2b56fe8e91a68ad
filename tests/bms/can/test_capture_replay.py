"""Recording sessions to python-can logs, replaying them as a bus, and the ``bms`` CLI."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import can
import pytest

from edge_agent.bms import open_bms, read_bms
from edge_agent.bms.can.bus import ReplayBus
from edge_agent.bms.profile import load_profile
from edge_agent.bms.settings import BmsSettings, CanSettings
from edge_agent.cli import main
from edge_agent.errors import BusError
from edge_agent.sim.can_gbt import GbtBmsSimulator
from tests.support.can import (
    channel_fixture,  # noqa: F401 - fixtures
    value,
    virtual,
)


def fast_gbt():
    p = load_profile("gbt27930-generic")
    return replace(p, gbt27930=replace(p.gbt27930, bhm_wait_s=0.5, listen_s=0.5))


async def record(profile, can_settings, path):
    async with open_bms(profile, BmsSettings(can=can_settings), record=path) as source:
        return await source.read(8.0)


@pytest.mark.parametrize("suffix", [".log", ".asc", ".blf"])
def test_record_then_replay_gives_the_same_reading(channel, tmp_path, suffix):
    path = tmp_path / f"session{suffix}"
    with GbtBmsSimulator(channel=channel, cells=(3.61, 3.62, 3.63) * 32):
        live = asyncio.run(record(fast_gbt(), virtual(channel), path))
    assert live.status == "ok", live.problems
    frames = list(can.LogReader(str(path)))
    ids = {m.arbitration_id for m in frames}
    assert {
        0x1826F456,
        0x182756F4,
        0x1801F456,
        0x1CEC56F4,
        0x1CECF456,
        0x1CEB56F4,
    } <= ids  # both directions
    replayed = asyncio.run(
        read_bms(fast_gbt(), BmsSettings(can=CanSettings(replay=str(path))), 8.0)
    )
    assert replayed.transport == "replay" and replayed.status == "ok", replayed.problems
    assert replayed.identity == live.identity
    assert replayed.state.cell_voltages == live.state.cell_voltages
    assert value(replayed.identity.vin) == ("LSVAU2180N2183294", "", "gbt27930:BRM")


@pytest.mark.parametrize("suffix", [".blf", ".asc"])
def test_a_channel_name_ending_in_a_large_number_still_records(channel, tmp_path, suffix):
    """Log formats store the channel as a number taken from the name's trailing digits
    (BLF: 16 bits); the recorder must not fail on ``...-987654`` (a uuid-named test bus did)."""
    channel = f"{channel}-987654"
    path = tmp_path / f"session{suffix}"
    with GbtBmsSimulator(channel=channel, cells=(3.61, 3.62, 3.63) * 32):
        live = asyncio.run(record(fast_gbt(), virtual(channel), path))
    assert live.status == "ok", live.problems
    assert len(list(can.LogReader(str(path)))) > 10


def test_replay_errors(tmp_path):
    with pytest.raises(BusError, match="not found"):
        ReplayBus(tmp_path / "missing.log")
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    with pytest.raises(BusError, match="cannot replay"):
        ReplayBus(bad)
    empty = tmp_path / "empty.log"
    empty.write_text("")
    r = asyncio.run(read_bms(fast_gbt(), BmsSettings(can=CanSettings(replay=str(empty))), 5.0))
    assert r.status == "failed" and "no frame from BMS" in r.problems[0]


def test_cli_read_capture_replay(channel, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGE_AGENT_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    out = tmp_path / "cap.asc"
    with GbtBmsSimulator(channel=channel):
        code = main(
            [
                "bms",
                "capture",
                "--out",
                str(out),
                "--profile",
                "gbt27930-generic",
                "--interface",
                "virtual",
                "--channel",
                channel,
                "--timeout",
                "6",
            ]
        )
        assert code == 0
        captured = json.loads(capsys.readouterr().out)
        assert captured["identity"]["serial"] == {
            "value": "1234",
            "unit": "",
            "method": "gbt27930:BRM",
        }
        code = main(
            [
                "bms",
                "read",
                "--profile",
                "gbt27930-generic",
                "--interface",
                "virtual",
                "--channel",
                channel,
                "--timeout",
                "6",
            ]
        )
        live = json.loads(capsys.readouterr().out)
    assert code == 0 and live["status"] == "ok" and live["state"]["cell_voltages"][0] == 3.7
    assert main(["bms", "replay", str(out), "--profile", "gbt27930-generic"]) == 0
    replayed = json.loads(capsys.readouterr().out)
    assert replayed["transport"] == "replay" and replayed["identity"] == captured["identity"]
    # a silent bus: JSON with the reason and exit status 1
    assert (
        main(
            [
                "bms",
                "read",
                "--profile",
                "uds-generic",
                "--interface",
                "virtual",
                "--channel",
                channel + "-x",
                "--timeout",
                "2",
            ]
        )
        == 1
    )
    failed = json.loads(capsys.readouterr().out)
    assert failed["status"] == "failed" and "no UDS response" in failed["problems"][0]
    assert main(["bms", "capture", "--out", str(tmp_path / "x.txt"), "--duration", "0.1"]) == 2
    passive = tmp_path / "passive.log"
    assert (
        main(
            [
                "bms",
                "capture",
                "--out",
                str(passive),
                "--duration",
                "0.2",
                "--interface",
                "virtual",
                "--channel",
                channel,
            ]
        )
        == 0
    )
    assert passive.exists()


def test_profiles_cli(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_AGENT_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    assert main(["profiles", "list"]) == 0
    listing = capsys.readouterr().out
    for name in ("gbt27930-generic", "uds-generic", "gm-hv-battery", "tesla-model3"):
        assert name in listing
    assert main(["profiles", "validate"]) == 0
    shipped = list((Path(__file__).resolve().parents[3] / "edge_agent/bms/profiles").glob("*.toml"))
    assert capsys.readouterr().out.count("ok ") == len(shipped) >= 4
    assert main(["profiles", "show", "tesla-model3"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["dbc"]["fields"]["soc"] == "SOCave292" and shown["bitrate"] == 500000
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\ntransport = "can"\nmethods = ["uds"]\n[uds]\ntx_id = "x"\n')
    assert main(["profiles", "validate", str(bad)]) == 1
    assert "uds.tx_id: must be an integer" in capsys.readouterr().out
    demo = Path(__file__).parent / "data" / "demo-pack.toml"
    assert main(["profiles", "validate", str(demo)]) == 0


def test_cli_takes_bus_and_profile_from_the_config_file(channel, tmp_path, capsys, monkeypatch):
    config = tmp_path / "agent.toml"
    config.write_text(
        '[bms]\nprofile = "gbt27930-generic"\ntimeout_s = 6.0\n'
        f'[bms.can]\ninterface = "virtual"\nchannel = "{channel}"\n'
    )
    monkeypatch.setenv("EDGE_AGENT_CONFIG", str(config))
    record = tmp_path / "s.log"
    with GbtBmsSimulator(channel=channel):
        assert main(["bms", "read", "--record", str(record)]) == 0
    live = json.loads(capsys.readouterr().out)
    assert live["status"] == "ok" and live["identity"]["vin"]["value"] == "LSVAU2180N2183294"
    assert main(["bms", "read", "--replay", str(record)]) == 0
    assert json.loads(capsys.readouterr().out)["identity"] == live["identity"]
