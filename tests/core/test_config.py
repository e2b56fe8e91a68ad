"""Configuration: typed, validated once, key-path errors, env overrides, CLI exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.config import AgentConfig, config_from_plain, load_config
from edge_agent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_valid_without_a_file() -> None:
    config = load_config(None, environ={})
    assert isinstance(config, AgentConfig)
    assert config.uplink.mqtt.port == 1883
    assert config.station.bms.timeout_s == 6.0


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"uplink": {"mqtt": {"port": 70000}}}, "uplink.mqtt.port: must be 1..65535, got 70000"),
        (
            {"uplink": {"mqtt": {"port": "1883"}}},
            "uplink.mqtt.port: must be an integer, got '1883'",
        ),
        (
            {"uplink": {"mqtt": {"protocol": "4"}}},
            "uplink.mqtt.protocol: must be one of 'auto', '5', '3.1.1'",
        ),
        ({"station": {"site": "bad site!"}}, "station.site: must match"),
        ({"station": {"sitee": "x"}}, "station.sitee: unknown key"),
        ({"signing": {"alg": "rsa"}}, "signing.alg: must be one of 'ed25519', 'p256'"),
        ({"station": {"bms": {"timeout_s": 0}}}, "station.bms.timeout_s: must be 0.05..600"),
        ({"nodes": {"ports": "/dev/ttyACM0"}}, "nodes.ports: must be a list"),
    ],
)
def test_bad_values_name_the_key_path(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_plain(doc)
    assert str(info.value).startswith(message)


def test_environment_overrides_file(tmp_path: Path) -> None:
    file = tmp_path / "agent.toml"
    file.write_text('[uplink.mqtt]\nport = 1884\nhost = "broker.local"\n')
    config = load_config(file, environ={"EDGE_AGENT__UPLINK__MQTT__PORT": "1885"})
    assert config.uplink.mqtt.port == 1885
    assert config.uplink.mqtt.host == "broker.local"


def test_cli_reports_bad_file_with_status_2_and_no_traceback(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text("[uplink.mqtt]\nport = 70000\n")
    proc = subprocess.run(
        [sys.executable, "-m", "edge_agent", "--config", str(file), "config", "check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 2
    assert "uplink.mqtt.port: must be 1..65535, got 70000" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_reports_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    file = tmp_path / "broken.toml"
    file.write_text("[uplink.mqtt\n")
    for path in (file, tmp_path / "missing.toml"):
        proc = subprocess.run(
            [sys.executable, "-m", "edge_agent", "--config", str(path), "config", "check"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
docs = st.recursive(
    scalars,
    lambda inner: st.dictionaries(
        st.sampled_from(["station", "uplink", "mqtt", "port", "site", "x"]), inner, max_size=4
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(docs)
def test_arbitrary_documents_give_config_or_config_error(doc: object) -> None:
    try:
        config_from_plain(doc)  # type: ignore[arg-type]
    except ConfigError:
        pass
