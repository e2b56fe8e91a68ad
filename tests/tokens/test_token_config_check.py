"""``config check`` on token sections: the module file exists, the PIN file is owner-only,
and a PIN in the config file itself is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_agent.cli import main
from tests.support.cli import one_line_error
from tests.support.tokens import write_pin


def config(tmp_path: Path, section: str, *, gateway: str = "") -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[station]\ndata_dir = "{tmp_path / "data"}"\n[signing.pkcs11]\n{section}{gateway}'
    )
    return path


@pytest.fixture
def module(tmp_path: Path) -> Path:
    """Stands in for a module: config check looks at the file, it loads nothing."""
    path = tmp_path / "libtoken.so"
    path.write_bytes(b"\x7fELF")
    return path


def test_a_good_token_section_passes(
    tmp_path: Path, module: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pin = write_pin(tmp_path / "pin")
    cfg = config(tmp_path, f'module = "{module}"\ntoken_label = "t"\npin_file = "{pin}"\n')
    assert main(["--config", str(cfg), "config", "check"]) == 0
    assert "config ok" in capsys.readouterr().out


def test_a_missing_module_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pin = write_pin(tmp_path / "pin")
    gone = tmp_path / "nowhere" / "libsofthsm2.so"
    cfg = config(tmp_path, f'module = "{gone}"\ntoken_label = "t"\npin_file = "{pin}"\n')
    line = one_line_error(capsys, "--config", str(cfg), "config", "check")
    assert line.startswith(f"error: signing.pkcs11.module: PKCS#11 module not found: {gone}")


@pytest.mark.parametrize(
    ("prepare", "problem"),
    [
        (lambda p: p.chmod(0o640), "has mode 0640; it must be readable by its owner only"),
        (lambda p: p.chmod(0o604), "has mode 0604"),
        (lambda p: p.unlink(), "not found"),
        (lambda p: p.write_text(""), "empty"),
    ],
)
def test_the_pin_file_must_be_owner_only(
    tmp_path: Path,
    module: Path,
    capsys: pytest.CaptureFixture[str],
    prepare: object,
    problem: str,
) -> None:
    pin = write_pin(tmp_path / "pin")
    prepare(pin)  # type: ignore[operator]
    cfg = config(tmp_path, f'module = "{module}"\ntoken_label = "t"\npin_file = "{pin}"\n')
    line = one_line_error(capsys, "--config", str(cfg), "config", "check")
    assert line.startswith(f"error: signing.pkcs11.pin_file: PIN file {pin}: ")
    assert problem in line


def test_a_pin_in_the_config_file_is_refused(
    tmp_path: Path, module: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, f'module = "{module}"\ntoken_label = "t"\npin = "1234"\n')
    line = one_line_error(capsys, "--config", str(cfg), "config", "check")
    assert "signing.pkcs11" in line and "the PIN never goes in the config file" in line


def test_the_gateway_section_is_checked_too(
    tmp_path: Path, module: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pin = write_pin(tmp_path / "pin")
    loose = tmp_path / "loose-pin"
    loose.write_text("1234\n")
    os.chmod(loose, 0o644)
    gateway = (
        f'[gateway]\ndata_dir = "{tmp_path / "gw"}"\n[gateway.receipt_pkcs11]\n'
        f'module = "{module}"\ntoken_label = "t"\npin_file = "{loose}"\n'
    )
    cfg = config(
        tmp_path, f'module = "{module}"\ntoken_label = "t"\npin_file = "{pin}"\n', gateway=gateway
    )
    line = one_line_error(capsys, "--config", str(cfg), "config", "check")
    assert line.startswith("error: gateway.receipt_pkcs11.pin_file: ") and "0644" in line
