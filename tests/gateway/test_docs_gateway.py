"""The commands of docs/run-a-gateway.md sections 2 (trust store) and 6 (dead letters) run in
order against a running gateway with real brokers, and do what the guide says."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.gateway.pipeline import Gateway
from tests.support.gateway import (
    ROOT,
    SITE,
    Rig,
    SimStation,
    gateway_config_file,
    publish_all,
    station_client,
    wait_until,
)
from tests.support.mosquitto import RecordingSubscriber

pytestmark = pytest.mark.timeout(300)

DOC = ROOT / "docs" / "run-a-gateway.md"


def _section(title: str) -> str:
    """The section whose heading is ``title``, with or without its number ("6. ")."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"\n## (\d+\. )?{re.escape(title)}\n", text)
    assert found, f"docs/run-a-gateway.md has no section {title!r}"
    end = text.find("\n## ", found.end())
    return text[found.start() : end if end != -1 else len(text)]


def _commands(title: str) -> list[tuple[str, int]]:
    """(command, expected exit status) of every line of the section's ```sh blocks."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", _section(title), flags=re.S):
        for line in block.splitlines():
            if line.strip():
                command, _, comment = line.partition("  #")
                status = re.search(r"exit (\d+)", comment)
                out.append((command.strip(), int(status.group(1)) if status else 0))
    return out


def test_trust_and_dead_letter_commands_of_the_guide(
    rig: Rig, recorder: RecordingSubscriber, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "edge-agent"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m edge_agent "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=str(ROOT))
    env.pop("EDGE_AGENT_CONFIG", None)
    settings = rig.settings()
    gateway_config_file(work / "gateway.toml", settings)
    # st01 has a new key that nobody registered yet: its events become dead letters
    newcomer = SimStation(SITE, "st01", tmp_path / "st01-key")
    shutil.copy(newcomer.public_pem, work / "st01.pub.pem")
    kid = newcomer.signer.kid.hex()
    gw = Gateway(settings)
    gw.start()
    client = station_client(rig.pki, rig.site.port, "st01")
    said: list[str] = []  # stdout of each command, in order
    errs: list[str] = []

    def run(command: str, expected: int) -> None:
        command = command.replace("plant-a", SITE).replace("<kid-hex>", kid)
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == expected, f"{command}\n{done.stdout}\n{done.stderr}"
        said.append(done.stdout)
        errs.append(done.stderr)

    try:
        assert gw.site.subscribed.wait(20)
        events = [newcomer.next_event() for _ in range(3)]
        publish_all(client, [(newcomer.topic, s) for _, s in events])
        registry = gw.metrics.registry
        assert wait_until(lambda: registry.get_sample_value("gateway_dead_letters") == 3)
        trust_commands = _commands("Register the stations' keys")
        assert len(trust_commands) == 3
        for command, expected in trust_commands:
            run(command, expected)  # add, list, then revoke the new key again
        dead_letter_commands = _commands("Rejected messages (dead letters)")
        assert len(dead_letter_commands) == 6
        for command, expected in dead_letter_commands:
            run(command, expected)
        keys = {f"event:{e.event_id}" for e, _ in events}
        assert recorder.wait_for(keys, 30) == set()
        assert gw.upstream.wait_idle(20)
    finally:
        client.disconnect()
        client.loop_stop()
        gw.stop()
    assert {k: recorder.counts[k] for k in keys} == dict.fromkeys(keys, 1)
    assert said[0].strip() == kid  # trust add prints the key id
    assert said[2].strip() == f"revoked {kid}"
    assert said[3].count("unknown_kid") == 3  # rejected list: one line per held message
    assert json.loads(said[4])["reason"] == "unknown_kid"  # rejected show 1
    assert errs[5] == f"error: key {kid} is revoked; add it with --unrevoke to trust it again\n"
    assert said[7].count(" accepted") == 3  # replay --reason unknown_kid
    states = [json.loads(line)["state"] for line in said[8].splitlines()]
    assert states == ["accepted"] * 3
