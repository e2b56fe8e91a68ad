"""Run every shell command of docs/signing.md in order, as a user would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_real_part
from tests.support.signing import ROOT

DOC = ROOT / "docs" / "signing.md"


def _commands() -> list[tuple[str, int]]:
    """(command, expected exit status) for each line of the ```sh blocks."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S):
        for line in block.splitlines():
            if not line.strip():
                continue
            command, _, comment = line.partition("  #")
            status = re.search(r"exit (\d+)", comment)
            out.append((command.strip(), int(status.group(1)) if status else 0))
    return out


def test_doc_commands_run(tmp_path: Path) -> None:
    # the token section runs against SoftHSM2 (Debian softhsm2)
    require_real_part(shutil.which("softhsm2-util") is not None, "SoftHSM2 (Debian softhsm2)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "edge-agent").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m edge_agent "$@"\n')
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    for shim in bin_dir.iterdir():
        shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    (work / "schemas").symlink_to(ROOT / "schemas")
    env = dict(
        os.environ,
        PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        PYTHONPATH=str(ROOT),
    )
    env.pop("EDGE_AGENT_CONFIG", None)
    commands = _commands()
    assert len(commands) >= 8
    outputs = {}
    for command, expected in commands:
        result = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == expected, f"{command}\n{result.stdout}\n{result.stderr}"
        outputs[command] = result.stdout
    kid = outputs["edge-agent keys init --dir ./keys --alg ed25519"].strip()
    assert re.fullmatch(r"[0-9a-f]{32}", kid)
    assert f"kid: {kid}" in outputs["edge-agent keys show --dir ./keys"]
    assert (
        f"{kid} trusted recy-suzhou-01/bench-03"
        in outputs["edge-agent keys trust --store ./trust.json"]
    )
    verified = outputs["edge-agent verify ./signed/healthy-lfp.cose --trust ./trust.json"]
    example = json.loads((ROOT / "schemas" / "examples" / "healthy-lfp.json").read_text())
    assert f'"kid": "{kid}"' in verified
    assert f'"pack_code": "{example["pack"]["pack_code"]}"' in verified
    token_kid = next(out for cmd, out in outputs.items() if "keys init --pkcs11" in cmd).strip()
    shown = next(out for cmd, out in outputs.items() if "keys show --pkcs11" in cmd)
    assert f"kid: {token_kid}" in shown and "location: pkcs11" in shown
    assert "never_extractable=yes" in shown
    rotated = outputs["edge-agent --config station.toml keys rotate"]
    assert re.fullmatch(rf"rotation \S+: {kid} -> [0-9a-f]{{32}} switched\n", rotated)
    assert f"rotated: {kid} -> " in outputs["edge-agent --config station.toml keys rotate --status"]
    assert f"retired {kid}" in outputs["edge-agent --config station.toml keys retire --force"]
    # the token key rotates inside the token: switched at once (no receipts configured)
    token_cmd = "SOFTHSM2_CONF=softhsm/softhsm2.conf edge-agent --config station-token.toml keys"
    assert re.fullmatch(
        rf"rotation \S+: {token_kid} -> [0-9a-f]{{32}} switched\n", outputs[f"{token_cmd} rotate"]
    )
    status = outputs[f"{token_cmd} rotate --status"]
    assert f"rotated: {token_kid} -> " in status and f"(station.old.{token_kid})" in status
    assert f"retired {token_kid}" in outputs[f"{token_cmd} retire --force"]
    rejected = [out for cmd, out in outputs.items() if "bms-unreadable" in cmd]
    assert rejected[0].startswith("invalid: station_mismatch")
