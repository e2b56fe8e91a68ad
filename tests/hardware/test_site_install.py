"""One consistent site: install.sh with a site PKI, then the shipped configs against the shipped
Mosquitto site.conf, run for real (issue 15: both used to speak plaintext to 1883 while the
broker listened only on 8883 with client certificates)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.config import check_site, load_config
from edge_agent.uplink.mqtt_client import connect_probe
from tests.conftest import require_real_part
from tests.support.gateway import MOSQUITTO, ROOT_CONF, Broker, free_port, make_pki

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "hardware" / "os" / "edge-agent"


class Site:
    """A staged installation (install.sh --destdir) and its broker on a free port."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.pki = make_pki(base / "pki", ["bench-1"])
        self.dest = base / "root"
        env = {k: v for k, v in os.environ.items() if k != "DESTDIR"}
        done = subprocess.run(
            ["bash", str(ROOT / "hardware/install.sh"), "--destdir", str(self.dest), "--no-venv",
             "--no-enable", "--gateway", "--pki", str(self.pki)],
            capture_output=True, text=True, timeout=60, check=False, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        self.port = free_port()
        (self.dest / "etc/edge-agent/upstream-ca.pem").write_bytes(
            (self.pki / "ca.crt").read_bytes()
        )
        workdir = base / "broker"
        workdir.mkdir()
        conf = (self.dest / "etc/mosquitto/conf.d/battrace-site.conf").read_text()
        conf = conf.replace("/etc/mosquitto/battrace", str(self.dest / "etc/mosquitto/battrace"))
        conf = conf.replace("/var/lib/mosquitto/", f"{workdir}/")
        conf = conf.replace("listener 8883", f"listener {self.port} 127.0.0.1")
        self.broker = Broker(workdir, conf + "\n" + ROOT_CONF, self.port)

    def config(self, name: str) -> Path:
        """The staged config with its absolute paths moved under the staging root."""
        text = (self.dest / "etc/edge-agent" / name).read_text()
        for prefix in ("/etc/edge-agent", "/var/lib/edge-agent"):
            text = text.replace(f'"{prefix}', f'"{self.dest}{prefix}')
        text = text.replace(
            "port = 8883", f"port = {self.port}", 2 if name == "gateway.toml" else 1
        )
        path = self.base / name
        path.write_text(text)
        return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_real_part(Path(MOSQUITTO).exists(), f"mosquitto ({MOSQUITTO})")
    s = Site(tmp_path_factory.mktemp("site"))
    s.broker.start()
    yield s
    s.broker.stop()


def _cli(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_AGENT")}
    environ.update(PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", "--config", str(config), *args],
        capture_output=True, text=True, timeout=90, check=False, env=environ,
    )  # fmt: skip


def test_shipped_configs_use_tls_on_8883_with_client_certificates() -> None:
    station = load_config(SHIPPED / "config.toml", environ={})
    gateway = load_config(SHIPPED / "gateway.toml", environ={})
    for mqtt in (station.uplink.mqtt, gateway.gateway.site_mqtt, gateway.gateway.upstream_mqtt):
        assert mqtt.port == 8883 and mqtt.tls.enabled and not mqtt.tls.insecure_skip_verify
    assert station.uplink.mqtt.tls.cert_file is not None
    assert gateway.gateway.site_mqtt.tls.cert_file is not None
    for config in (station, gateway):
        assert config.metrics.host == "127.0.0.1" and config.metrics.port > 0
    assert station.metrics.port != gateway.metrics.port  # both may run on one host


def test_station_config_as_installed_passes_check_and_selftest(site: Site) -> None:
    config = site.config("config.toml")
    checked = _cli(config, "config", "check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""  # no warning either
    selftest = _cli(config, "selftest", "--only", "broker", "--json")
    assert selftest.returncode == 0, selftest.stdout + selftest.stderr
    [broker] = [c for c in json.loads(selftest.stdout)["checks"] if c["name"] == "broker"]
    assert broker["verdict"] == "PASS" and "over TLS" in broker["detail"]


def test_gateway_config_as_installed_connects_to_the_site_broker(site: Site) -> None:
    config = load_config(site.config("gateway.toml"), environ={})
    assert check_site(config, gateway=True).problems == ()
    ok, reason = connect_probe(config.gateway.site_mqtt, config_key="gateway.site_mqtt")
    assert ok, reason


def _broker_detail(site: Site, env: dict[str, str]) -> str:
    done = _cli(site.config("config.toml"), "selftest", "--only", "broker", "--json", env=env)
    assert done.returncode != 0
    [broker] = [c for c in json.loads(done.stdout)["checks"] if c["name"] == "broker"]
    assert broker["verdict"] == "FAIL"
    return f"{broker['detail']} | {broker['next_step']}"


def test_selftest_names_plaintext_to_the_tls_listener(site: Site) -> None:
    detail = _broker_detail(site, {"EDGE_AGENT__UPLINK__MQTT__TLS__ENABLED": "false"})
    assert "expects TLS" in detail


def test_selftest_names_an_untrusted_broker_certificate(site: Site, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other", ["bench-1"])
    detail = _broker_detail(
        site, {"EDGE_AGENT__UPLINK__MQTT__TLS__CA_FILE": f'"{other / "ca.crt"}"'}
    )
    assert "does not trust" in detail and "ca_file" in detail


def test_selftest_names_a_refused_client_certificate(site: Site, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other", ["bench-1"])
    detail = _broker_detail(
        site,
        {
            "EDGE_AGENT__UPLINK__MQTT__TLS__CERT_FILE": f'"{other / "bench-1.crt"}"',
            "EDGE_AGENT__UPLINK__MQTT__TLS__KEY_FILE": f'"{other / "bench-1.key"}"',
        },
    )
    assert "client certificate" in detail
