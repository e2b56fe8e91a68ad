"""OS configuration files: systemd units verified by systemd-analyze, udev rules and .network
files parsed strictly, config.txt overlays and example configs checked, install.sh staged."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edge_agent.config import load_config
from tests.conftest import require_real_part
from tests.hardware.osfiles import (
    RuleSyntaxError,
    parse_bitrate,
    parse_networkd,
    parse_timespan_ms,
    parse_udev_file,
    parse_udev_rule,
)

ROOT = Path(__file__).resolve().parents[2]
OS_DIR = ROOT / "hardware" / "os"
UNITS = OS_DIR / "systemd" / "system"
INSTALL = ROOT / "hardware" / "install.sh"
EXEC = "/opt/edge-agent/venv/bin/edge-agent"


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    require_real_part(tool is not None, "systemd-analyze")
    assert tool is not None
    return tool


def _staged_unit(tmp: Path, name: str, *, mutate: str | None = None) -> Path:
    """A copy of the unit whose ExecStart binary exists (verify insists on it)."""
    binary = tmp / "bin" / "edge-agent"
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text("#!/bin/sh\nexit 0\n", encoding="ascii")
    binary.chmod(0o755)
    text = (UNITS / name).read_text(encoding="utf-8")
    assert EXEC in text
    text = text.replace(EXEC, str(binary))
    if mutate:
        text = text.replace(mutate, mutate.replace("Watchdog", "Watchdg"))
    unit = tmp / name
    unit.write_text(text, encoding="utf-8")
    return unit


@pytest.mark.parametrize("name", ["edge-agent.service", "edge-agent-gateway.service"])
def test_units_pass_systemd_analyze_verify(tmp_path: Path, name: str) -> None:
    tool = _analyze()
    unit = _staged_unit(tmp_path, name)
    done = subprocess.run(
        [tool, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 on unknown keys but prints them: a clean unit prints nothing at all.
    assert (done.returncode, done.stderr.strip(), done.stdout.strip()) == (0, "", "")


def test_verify_really_catches_a_bad_key(tmp_path: Path) -> None:
    tool = _analyze()
    unit = _staged_unit(tmp_path, "edge-agent.service", mutate="WatchdogSec=30")
    done = subprocess.run(
        [tool, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Unknown key 'WatchdgSec'" in done.stderr


@pytest.mark.parametrize("name", ["edge-agent.service", "edge-agent-gateway.service"])
def test_units_are_notify_watchdog_and_hardened(tmp_path: Path, name: str) -> None:
    directives = _directives(UNITS / name)
    for key, value in {
        "Type": "notify",
        "NotifyAccess": "main",
        "WatchdogSec": "30",
        "Restart": "on-failure",
        "User": "edge-agent",
        "ProtectSystem": "strict",
        "PrivateTmp": "true",
        "NoNewPrivileges": "true",
        "CapabilityBoundingSet": "",
        "DevicePolicy": "closed",
    }.items():
        assert directives.get(key) == [value], (key, directives.get(key))
    data_dir = (
        "/var/lib/edge-agent" if name == "edge-agent.service" else "/var/lib/edge-agent-gateway"
    )
    assert directives["ReadWritePaths"] == [data_dir]
    tool = _analyze()
    unit = _staged_unit(tmp_path, name)
    done = subprocess.run(
        [tool, "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert score is not None, done.stdout[-500:] + done.stderr
    assert float(score[1]) <= 2.5  # systemd rates <= 3.9 as "OK"; keep it well inside


def test_agent_unit_allows_serial_groups() -> None:
    directives = _directives(UNITS / "edge-agent.service")
    assert directives["SupplementaryGroups"] == ["dialout video"]
    allowed = {v.split()[0] for v in directives["DeviceAllow"]}
    assert {"char-ttyUSB", "char-ttyACM", "char-video4linux"} <= allowed
    assert "AF_CAN" in directives["RestrictAddressFamilies"][0]


def _directives(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_udev_rules_parse_and_name_every_adapter() -> None:
    rules = parse_udev_file(OS_DIR / "udev" / "rules.d" / "99-edge-agent.rules")
    labels = {t.value for r in rules for t in r if t.key == "LABEL"}
    gotos = {t.value for r in rules for t in r if t.key == "GOTO"}
    assert gotos <= labels == {"edge_agent_end"}
    by_id: dict[tuple[str, str], list[str]] = {}
    for rule in rules:
        fields = {(t.key, t.attr): t.value for t in rule if t.is_match}
        vid, pid = fields.get(("ATTRS", "idVendor")), fields.get(("ATTRS", "idProduct"))
        if vid is None or pid is None:
            continue
        assert any(not t.is_match for t in rule), rule
        assigned = {t.key: t.value for t in rule if not t.is_match and t.key in {"GROUP", "MODE"}}
        assert assigned == {"GROUP": "dialout", "MODE": "0660"}
        assert ("ENV", "ID_MM_DEVICE_IGNORE") in {(t.key, t.attr) for t in rule}
        by_id[(vid, pid)] = [t.value for t in rule if t.key == "SYMLINK"]
    assert by_id[("2e8a", "0005")] == ["edge-node-%E{ID_SERIAL_SHORT}"]  # RP2040 MicroPython
    assert by_id[("303a", "1001")] == ["edge-node-%E{ID_SERIAL_SHORT}"]  # ESP32 native USB
    assert by_id[("16d0", "117e")] == ["edge-slcan"]  # CANable slcan
    for bridge in [("0403", "6001"), ("1a86", "7523"), ("10c4", "ea60")]:  # FTDI, CH340, CP210x
        assert by_id[bridge][0] == "edge-rs485"


@pytest.mark.parametrize(
    "bad",
    [
        'ATTRS{idVendor}="2e8a", SYMLINK+="x"',  # match-only key assigned
        'MODE=="0660"',  # assign-only key compared
        'FOO=="bar"',  # unknown key
        'ATTRS{idVendor}=="2E8A", SYMLINK+="x"',  # udev compares sysfs text: lowercase hex
        'SUBSYSTEM=="tty" SYMLINK+="x"',  # missing comma
        'MODE="rw"',  # not octal
        'ENV="x"',  # ENV needs {key}
        'SUBSYSTEM=="tty", SYMLINK+="unterminated',
    ],
)
def test_udev_parser_rejects(bad: str) -> None:
    with pytest.raises(RuleSyntaxError):
        parse_udev_rule(bad)


@pytest.mark.parametrize(("name", "bitrate"), [("can0", 250_000), ("can1", 500_000)])
def test_network_files_bring_can_up_at_the_right_bitrate(name: str, bitrate: int) -> None:
    sections = parse_networkd(OS_DIR / "systemd" / "network" / f"80-{name}.network")
    assert sections["Match"]["Name"] == name
    assert parse_bitrate(sections["CAN"]["BitRate"]) == bitrate
    assert 0 < parse_timespan_ms(sections["CAN"]["RestartSec"]) <= 1000
    assert sections["Link"]["RequiredForOnline"] == "no"


def test_networkd_parser_rejects(tmp_path: Path) -> None:
    for text in [
        "[CAN]\nBitrate=250K\n",
        "[Bogus]\nX=1\n",
        "BitRate=1\n",
        "[CAN]\nBitRate=1\nBitRate=2\n",
    ]:
        f = tmp_path / "x.network"
        f.write_text(text, encoding="utf-8")
        with pytest.raises(RuleSyntaxError):
            parse_networkd(f)
    with pytest.raises(RuleSyntaxError):
        parse_bitrate("250 kbit")


def test_example_configs_load_and_match_network_files() -> None:
    station = load_config(OS_DIR / "edge-agent" / "config.toml", environ={})
    network = parse_networkd(
        OS_DIR / "systemd" / "network" / f"80-{station.bms.can.channel}.network"
    )
    assert parse_bitrate(network["CAN"]["BitRate"]) == station.bms.can.bitrate
    assert station.bms.can.interface == "socketcan"
    assert str(station.station.data_dir) == "/var/lib/edge-agent"
    assert all(p.startswith("/dev/edge-node-") for p in station.nodes.ports)
    gateway = load_config(OS_DIR / "edge-agent" / "gateway.toml", environ={})
    assert str(gateway.gateway.data_dir) == "/var/lib/edge-agent-gateway"


@pytest.mark.parametrize("hat", ["mcp2515", "mcp2518fd"])
def test_config_txt_overlays(hat: str) -> None:
    text = (OS_DIR / "boot" / f"config-{hat}.txt").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert "dtparam=spi=on" in lines
    overlays = [ln.split("=", 1)[1].split(",") for ln in lines if ln.startswith("dtoverlay=")]
    names = [o[0] for o in overlays]
    if hat == "mcp2515":
        assert names == ["mcp2515-can0", "mcp2515-can1"]
        for o in overlays:
            params = dict(p.split("=") for p in o[1:])
            assert int(params["oscillator"]) in {8_000_000, 12_000_000, 16_000_000}
            assert 0 <= int(params["interrupt"]) <= 27
    else:
        assert names == ["mcp251xfd", "spi1-3cs", "mcp251xfd"]
        assert overlays[0][1] == "spi0-0" and overlays[2][1] == "spi1-0"


def test_install_script_passes_shellcheck_and_bash_n() -> None:
    subprocess.run(["bash", "-n", str(INSTALL)], check=True, timeout=30)
    checker = shutil.which("shellcheck")
    require_real_part(checker is not None, "shellcheck")
    assert checker is not None
    done = subprocess.run(
        [checker, str(INSTALL)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout


def _install(dest: Path, *extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DESTDIR"}
    done = subprocess.run(
        ["bash", str(INSTALL), "--destdir", str(dest), "--no-venv", *extra],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_install_stages_files_idempotently(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    first = _install(dest, "--can-hat", "mcp2515", "--gateway")
    assert "install: /etc/systemd/system/edge-agent.service" in first
    modes = {
        "etc/systemd/system/edge-agent.service": 0o644,
        "etc/systemd/system/edge-agent-gateway.service": 0o644,
        "etc/systemd/network/80-can0.network": 0o644,
        "etc/systemd/network/80-can1.network": 0o644,
        "etc/udev/rules.d/99-edge-agent.rules": 0o644,
        "etc/edge-agent/config.toml": 0o640,
        "etc/edge-agent/gateway.toml": 0o640,
        "var/lib/edge-agent": 0o750,
        "var/lib/edge-agent/keys": 0o700,
    }
    for rel, mode in modes.items():
        assert (dest / rel).stat().st_mode & 0o777 == mode, rel
    assert (dest / "etc/systemd/system/edge-agent.service").read_bytes() == (
        UNITS / "edge-agent.service"
    ).read_bytes()
    config_txt = dest / "boot/firmware/config.txt"
    assert config_txt.read_text(encoding="utf-8").count("dtoverlay=mcp2515-can0") == 1
    # A user edit survives a reinstall; nothing else changes on the second run.
    (dest / "etc/edge-agent/config.toml").write_text("# edited\n", encoding="utf-8")
    second = _install(dest, "--can-hat", "mcp2515", "--gateway")
    assert "install:" not in second and "append:" not in second
    assert "kept: /etc/edge-agent/config.toml" in second
    assert (dest / "etc/edge-agent/config.toml").read_text(encoding="utf-8") == "# edited\n"
    assert config_txt.read_text(encoding="utf-8").count("dtoverlay=mcp2515-can0") == 1
    assert "skipped (destdir): systemctl enable edge-agent.service" in second


def test_install_dry_run_changes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    out = _install(dest, "--dry-run", "--can-hat", "mcp2518fd")
    assert "would run: install -D -m 0644" in out
    assert not dest.exists()


def test_install_rejects_bad_options(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(INSTALL), "--destdir", str(tmp_path), "--can-hat", "sja1000"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "--can-hat must be" in done.stderr


def test_staged_unit_verifies(tmp_path: Path) -> None:
    """The unit as install.sh stages it is the one systemd-analyze accepts."""
    dest = tmp_path / "root"
    _install(dest)
    staged = dest / "etc/systemd/system/edge-agent.service"
    unit = tmp_path / "edge-agent.service"
    binary = tmp_path / "edge-agent"
    binary.write_text("#!/bin/sh\n", encoding="ascii")
    binary.chmod(0o755)
    unit.write_text(staged.read_text(encoding="utf-8").replace(EXEC, str(binary)), encoding="utf-8")
    done = subprocess.run(
        [_analyze(), "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
