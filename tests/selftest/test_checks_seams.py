"""Each check goes through the real seam of its part: the BMS source, the node link."""

from __future__ import annotations

from pathlib import Path

from edge_agent.bms.can.profile_source import CanProfileSource
from edge_agent.bms.modbus.profile_source import ModbusProfileSource
from edge_agent.bms.profile import load_profile
from edge_agent.config import config_from_plain
from edge_agent.selftest import CheckContext, Verdict, run_selftest
from edge_agent.selftest.checks.bms import open_profile_source
from edge_agent.selftest.checks.can import check_can
from edge_agent.sim.can_gbt import GbtBmsSimulator
from edge_agent.sim.can_uds import UdsEcuSimulator
from tests.selftest.local_parts import scale_node
from tests.support.hardware import unique_channel


def _can_ctx(channel: str) -> CheckContext:
    plain = {
        "station": {"bms": {"required": True}},
        "bms": {"profile": "gbt27930-generic", "can": {"interface": "virtual", "channel": channel}},
    }
    return CheckContext(config=config_from_plain(plain), frame_window_s=0.2)


def test_can_check_asks_the_bms_through_the_pack_profile() -> None:
    """The GB/T 27930 simulator only talks when asked: the probe asks as an identification does."""
    channel = unique_channel()
    with GbtBmsSimulator(channel=channel):
        lines = check_can(_can_ctx(channel))
    assert [(o.line, o.verdict) for o in lines] == [
        ("link", Verdict.PASS),
        ("frames", Verdict.WARN),  # a GB/T BMS is silent until asked
        ("bms", Verdict.PASS),
    ], lines
    assert "gbt27930-generic answered on" in lines[2].detail
    assert "manufacturer CATL" in lines[2].detail


def test_can_check_of_a_uds_pack_names_the_ecu() -> None:
    """A UDS BMS says nothing about the pack: the line shows the controller's identity, named
    as the ECU's (issue 14), not "no identity fields" and never as the pack's serial."""
    channel = unique_channel()
    plain = {
        "station": {"bms": {"required": True}},
        "bms": {"profile": "uds-generic", "can": {"interface": "virtual", "channel": channel}},
    }
    ctx = CheckContext(config=config_from_plain(plain), frame_window_s=0.2)
    with UdsEcuSimulator(channel=channel):
        lines = check_can(ctx)
    bms = lines[-1]
    assert (bms.line, bms.verdict) == ("bms", Verdict.PASS), lines
    assert "ECU supplier LGES" in bms.detail and "ECU serial BMS0042137755" in bms.detail
    assert "vin WVWZZZE1ZPP012345" in bms.detail
    assert ", serial BMS0042137755" not in bms.detail.replace("ECU serial", "")


def test_can_check_without_a_bms_fails_the_probe_line() -> None:
    lines = check_can(_can_ctx(unique_channel()))
    bms = lines[-1]
    assert (bms.line, bms.verdict, bms.required) == ("bms", Verdict.FAIL, True)
    assert "no BMS answer" in bms.detail and "12 V wake-up" in bms.next_step


def test_the_bms_source_follows_the_profile_transport() -> None:
    config = config_from_plain({"bms": {"modbus": {"url": "tcp://127.0.0.1:1502"}}})
    can_source = open_profile_source(load_profile("gbt27930-generic"), config.bms)
    modbus_source = open_profile_source(load_profile("sunspec-battery"), config.bms)
    assert isinstance(can_source, CanProfileSource) and can_source.transport == "can"
    assert isinstance(modbus_source, ModbusProfileSource) and modbus_source.transport == "modbus"


def test_nodes_and_scale_talk_to_the_node_firmware(tmp_path: Path) -> None:
    """The node link to the real firmware under MicroPython: hello, then a stable zero."""
    with scale_node(tmp_path / "node") as port:
        config = config_from_plain(
            {"nodes": {"ports": [port], "hello_timeout_s": 5.0, "stable_timeout_s": 6.0}}
        )
        report = run_selftest(CheckContext(config=config), only=["nodes", "scale"])
    nodes, scale = report.result("nodes"), report.result("scale")
    assert nodes.verdict is Verdict.PASS and "1 node(s) said hello" in nodes.detail
    assert "scale+sensors" in nodes.detail
    assert (
        scale.verdict is Verdict.PASS and scale.detail == f"{port}: stable at 0.000 kg (e = 50 g)"
    )


def test_modbus_check_reads_the_url_as_the_station_does() -> None:
    """The agent's Modbus link parses bms.modbus.url: what it refuses, the check refuses too."""
    from edge_agent.selftest.checks.modbus import check_modbus

    plain = {"bms": {"modbus": {"url": "rtu:///dev/ttyUSB0?baud=9600&speed=fast"}}}
    out = check_modbus(CheckContext(config=config_from_plain(plain)))
    assert out.verdict is Verdict.FAIL and "unknown serial option 'speed'" in out.detail
    assert out.next_step.startswith("fix bms.modbus.url")


def test_can_check_reads_a_replay_as_the_station_does(tmp_path: Path) -> None:
    """bms.can.replay: the bus is the recording (the station's open_bus), not a live channel."""
    recording = tmp_path / "can.log"
    recording.write_text(
        "(1.000000) can0 18F8DEAD#0011223344556677\n(1.010000) can0 1801F456#AA\n",
        encoding="ascii",
    )
    plain = {
        "bms": {"can": {"interface": "socketcan", "channel": "can9", "replay": str(recording)}}
    }
    ctx = CheckContext(config=config_from_plain(plain), frame_window_s=0.5)
    lines = check_can(ctx)
    assert [(o.line, o.verdict) for o in lines] == [
        ("link", Verdict.PASS),
        ("frames", Verdict.PASS),
    ]
    assert lines[0].detail == f"replay {recording} opened"
    assert lines[1].detail == "2 frames from 2 ids in 0.5 s"


SECTIONS_ONLY = """
import sys
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.bms.settings import BmsSettings, CanSettings
from edge_agent.nodes.settings import NodeSettings
from edge_agent.selftest import CheckContext, run_selftest
from edge_agent.signing.settings import SigningSettings
from edge_agent.station.settings import StationSettings
from edge_agent.uplink.settings import MqttSettings, UplinkSettings
from edge_agent.vision.settings import LabelSettings

tmp = Path(sys.argv[1])


@dataclass(frozen=True)
class Sections:
    station: StationSettings = field(default_factory=lambda: StationSettings(data_dir=tmp))
    signing: SigningSettings = field(default_factory=lambda: SigningSettings(key_dir=tmp))
    bms: BmsSettings = field(
        default_factory=lambda: BmsSettings(
            can=CanSettings(interface="virtual", channel="sections-only")
        )
    )
    label: LabelSettings = field(default_factory=lambda: LabelSettings(source=""))
    nodes: NodeSettings = field(default_factory=NodeSettings)
    uplink: UplinkSettings = field(default_factory=lambda: UplinkSettings(mqtt=MqttSettings(host="")))


report = run_selftest(CheckContext(config=Sections(), frame_window_s=0.1, run_root=tmp))
print(sorted((r.name, r.verdict.value) for r in report.results))
assert "edge_agent.config" not in sys.modules, "the self-test imported edge_agent.config"
"""


def test_selftest_runs_on_the_config_sections_alone(tmp_path: Path) -> None:
    """SelftestConfig is a protocol: any object with the six sections will do, and no check
    imports edge_agent.config (nothing below commands/ does)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", SECTIONS_ONLY, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "('key', 'FAIL')" in done.stdout and "('modbus', 'SKIP')" in done.stdout
    assert "('can.frames', 'WARN')" in done.stdout
