"""`config check` beyond types: data folders, TLS port and insecure TLS (issue 15)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.config import check_site, config_from_plain
from tests.support.cli import one_line_error


def _cfg(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_data_dir_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("")
    cfg = _cfg(tmp_path, f'[station]\ndata_dir = "{blocker}/sub"\n')
    line = one_line_error(capsys, "--config", str(cfg), "config", "check")
    assert line == f"error: station.data_dir: {blocker} is not a folder"
    for command in (["identify"], ["run"], ["outbox", "status"]):
        one_line_error(capsys, "--config", str(cfg), *command)


def test_data_dir_unwritable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    real_access = os.access
    # root writes anywhere, so CI simulates the refusal an ordinary user gets
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode)
    )
    cfg = _cfg(tmp_path, f'[station]\ndata_dir = "{locked}/agent"\n')
    line = one_line_error(capsys, "--config", str(cfg), "config", "check")
    assert "not writable by this user" in line and "station.data_dir" in line
    one_line_error(capsys, "--config", str(cfg), "identify", contains="not writable")


def test_plaintext_to_tls_port_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(tmp_path, f'[station]\ndata_dir = "{tmp_path}"\n[uplink.mqtt]\nport = 8883\n')
    line = one_line_error(capsys, "--config", str(cfg), "config", "check")
    assert line.startswith("error: uplink.mqtt.port: port 8883 is the MQTT-over-TLS port")
    allowed = _cfg(
        tmp_path,
        f'[station]\ndata_dir = "{tmp_path}"\n[uplink.mqtt]\nport = 8883\n'
        "[uplink.mqtt.tls]\nplaintext_on_tls_port = true\n",
    )
    assert main(["--config", str(allowed), "config", "check"]) == 0


def test_insecure_skip_verify_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(
        tmp_path,
        f'[station]\ndata_dir = "{tmp_path}"\n[uplink.mqtt]\nport = 8883\n'
        "[uplink.mqtt.tls]\nenabled = true\ninsecure_skip_verify = true\n",
    )
    assert main(["--config", str(cfg), "config", "check"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        "warning: uplink.mqtt.tls.insecure_skip_verify: the broker certificate is not checked; "
        "anyone on the network can pose as the broker"
    ]
    assert captured.out.startswith("config ok")


def test_gateway_defaults_are_consistent(tmp_path: Path) -> None:
    """The upstream defaults to 8883, so it defaults to TLS too (was plaintext to 8883)."""
    config = config_from_plain({"station": {"data_dir": str(tmp_path)}})
    assert config.gateway.upstream_mqtt.port == 8883
    assert config.gateway.upstream_mqtt.tls.enabled
    gw = config_from_plain(
        {"station": {"data_dir": str(tmp_path)}, "gateway": {"data_dir": str(tmp_path / "gw")}}
    )
    assert check_site(gw, gateway=True).problems == ()


def test_gateway_section_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(
        tmp_path,
        f'[station]\ndata_dir = "{tmp_path}"\n[gateway]\ndata_dir = "{tmp_path / "gw"}"\n'
        "[gateway.upstream_mqtt]\nport = 8883\n[gateway.upstream_mqtt.tls]\nenabled = false\n",
    )
    one_line_error(capsys, "--config", str(cfg), "config", "check", contains="upstream_mqtt.port")
