"""TLS as `config check` sees it and the warning at connect (issue 15)."""

from __future__ import annotations

import logging
import random
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from edge_agent.config import check_site, config_from_plain
from edge_agent.uplink.mqtt_client import make_client, reconnect_delays
from edge_agent.uplink.settings import MqttSettings, TlsSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pki")
    subprocess.run(
        ["sh", str(ROOT / "hardware/mosquitto/make-test-pki.sh"), str(out), "bench-1", "bench-2"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


def _problems(tmp_path: Path, tls: dict[str, object]) -> list[str]:
    config = config_from_plain(
        {"station": {"data_dir": str(tmp_path)}, "uplink": {"mqtt": {"port": 8883, "tls": tls}}}
    )
    return [str(p) for p in check_site(config).problems]


def test_good_client_pair_passes(tmp_path: Path, pki: Path) -> None:
    tls = {
        "enabled": True,
        "ca_file": str(pki / "ca.crt"),
        "cert_file": str(pki / "bench-1.crt"),
        "key_file": str(pki / "bench-1.key"),
    }
    assert _problems(tmp_path, tls) == []


def test_mismatched_pair_is_named(tmp_path: Path, pki: Path) -> None:
    tls = {
        "enabled": True,
        "ca_file": str(pki / "ca.crt"),
        "cert_file": str(pki / "bench-1.crt"),
        "key_file": str(pki / "bench-2.key"),
    }
    [problem] = _problems(tmp_path, tls)
    assert problem.startswith("uplink.mqtt.tls.cert_file: certificate and key do not load")


def test_ca_file_not_a_certificate(tmp_path: Path, pki: Path) -> None:
    [problem] = _problems(tmp_path, {"enabled": True, "ca_file": str(pki / "bench-1.key")})
    assert problem.startswith("uplink.mqtt.tls.ca_file: not a PEM CA certificate")


def test_expired_client_certificate(tmp_path: Path, pki: Path) -> None:
    key = pki / "bench-1.key"
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())  # type: ignore[arg-type]
        .serial_number(1)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2021, 1, 1, tzinfo=UTC))
        .sign(private, hashes.SHA256())  # type: ignore[arg-type]
    )
    old = tmp_path / "old.crt"
    old.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    [problem] = _problems(tmp_path, {"enabled": True, "cert_file": str(old), "key_file": str(key)})
    assert problem == "uplink.mqtt.tls.cert_file: client certificate expired 2021-01-01"


def test_insecure_logs_a_warning_at_connect(caplog: pytest.LogCaptureFixture) -> None:
    settings = MqttSettings(port=8883, tls=TlsSettings(enabled=True, insecure_skip_verify=True))
    with caplog.at_level(logging.INFO, logger="edge_agent.uplink.mqtt_client"):
        make_client(settings, client_id="t", config_key="uplink.mqtt")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "uplink.mqtt.tls.insecure_skip_verify is on: the broker certificate is not checked"
    ]


def test_reconnect_delays_are_jittered_per_client() -> None:
    """Stations cut off by one outage must not all retry at the same instants (issue 15)."""
    settings = MqttSettings(reconnect_min_s=1.0, reconnect_max_s=30.0)
    rng = random.Random(7)
    drawn = [reconnect_delays(settings, rng) for _ in range(200)]
    lows = sorted(low for low, _ in drawn)
    highs = sorted(high for _, high in drawn)
    assert all(1.0 <= low <= 2.0 for low in lows)
    assert all(15.0 <= high <= 30.0 for high in highs)
    assert lows[-1] - lows[0] > 0.8 and highs[-1] - highs[0] > 12  # spread, not one instant
    assert len({round(low, 3) for low in lows}) > 150
    tight = MqttSettings(reconnect_min_s=10.0, reconnect_max_s=12.0)
    assert all(low <= high for low, high in (reconnect_delays(tight, rng) for _ in range(50)))
