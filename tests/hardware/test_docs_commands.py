"""Run the commands of the hardware guides that need no hardware, exactly as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import can
import pytest

from tests.support.hardware import label_image

ROOT = Path(__file__).resolve().parents[2]
GUIDES = ["install-on-a-pi.md", "bring-up-buses.md", "record-and-replay.md"]
RUNNABLE_START = re.compile(
    r"^(?:EDGE_AGENT__\S+=\S+ )*(?:edge-agent|python|hardware/install\.sh)\b"
)
NEEDS_HARDWARE = ("sudo", "/dev/", "socketcan", "can0", "vcan0", "miniterm")
EXPECTED_FAILURES = {"--only key --only disk": 1, "label-photos-missing": 1}


def guide_commands(path: Path) -> list[str]:
    """`$ ` lines inside ```console blocks, comments stripped."""
    commands, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```console"
            continue
        if inside and line.startswith("$ "):
            commands.append(line[2:].split("  #")[0].strip())
    return commands


def runnable(command: str) -> bool:
    """Commands this machine can run: no root, no attached hardware."""
    return bool(RUNNABLE_START.match(command)) and not any(
        word in command for word in NEEDS_HARDWARE
    )


def _workspace(tmp: Path) -> dict[str, str]:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "edge-agent"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m edge_agent "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    # A wrapper, not a symlink: a symlinked venv python outside the venv loses its packages.
    py = bin_dir / "python"
    py.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    py.chmod(0o755)
    (tmp / "hardware").symlink_to(ROOT / "hardware")
    (tmp / "home").mkdir()
    # A recorded session as record-and-replay.md describes it.
    session = tmp / "session"
    label_image(session / "label" / "label-001.png")
    with can.CanutilsLogWriter(session / "can.log", channel="can0") as log:
        for i in range(20):
            log.on_message_received(
                can.Message(
                    timestamp=1700000000 + i * 0.01, arbitration_id=0x1826F456, data=bytes([i] * 8)
                )
            )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_AGENT") and k != "DESTDIR"}
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}",
        PYTHONPATH=str(ROOT),
        HOME=str(tmp / "home"),
    )
    return env


@pytest.mark.parametrize("guide", GUIDES)
def test_guide_commands_run_as_written(guide: str, tmp_path: Path) -> None:
    commands = [c for c in guide_commands(ROOT / "docs" / guide) if runnable(c)]
    assert commands, f"{guide} has no command this machine can run"
    env = _workspace(tmp_path)
    for command in commands:
        line = command.replace("/tmp/edge-root", str(tmp_path / "edge-root"))
        done = subprocess.run(
            ["bash", "-c", line],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        expected = next((rc for key, rc in EXPECTED_FAILURES.items() if key in command), 0)
        assert done.returncode == expected, (
            f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
        if "--json" in command and "selftest" in command:
            doc = json.loads(done.stdout)
            assert doc["exit_code"] == expected
            if expected == 0:
                assert all(c["verdict"] in {"PASS", "WARN", "SKIP"} for c in doc["checks"]), doc
    if guide == "install-on-a-pi.md":
        assert (tmp_path / "edge-root/etc/systemd/system/edge-agent.service").is_file()


def test_selectors() -> None:
    assert runnable("edge-agent selftest --only key")
    assert runnable("EDGE_AGENT__A__B=1 edge-agent selftest")
    assert not runnable("sudo hardware/install.sh --can-hat mcp2515")
    assert not runnable("candump -L can0 > session/can.log")
    assert guide_commands(ROOT / "docs" / "bring-up-buses.md")[0].startswith("dmesg")
