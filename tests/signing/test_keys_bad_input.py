"""Key folder mistakes: one line that says what is wrong and what to do (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.errors import KeyFileError
from edge_agent.signing.keys import init_keys, load_signer
from tests.support.cli import one_line_error

ROOT = Path(__file__).resolve().parents[2]


def test_init_dir_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "keys"
    target.write_text("precious")
    line = one_line_error(capsys, "keys", "init", "--dir", str(target), "--force")
    assert line == f"error: --dir: {target} is a file, not a key folder"
    assert "--force" not in line.split(":", 2)[2]
    with pytest.raises(KeyFileError, match="is a file, not a key folder"):
        init_keys(target, force=True)
    assert target.read_text() == "precious"


def test_missing_private_key_says_restore_not_init(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as caught:
        load_signer(tmp_path)
    message = str(caught.value)
    assert "restore station.key.pem" in message
    assert "NEW identity" in message and "trust again" in message


def test_sign_examples_refuses_a_0644_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    init_keys(keys)
    os.chmod(keys / "station.key.pem", 0o644)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "schemas/sign_examples.py"), "--out", str(tmp_path / "out"),
         "--key-dir", str(keys)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "mode 0644" in line and "chmod 600" in line
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.cose"))
