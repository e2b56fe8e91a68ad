"""Ingest test support: settings for the test upstream broker, the ingest as a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from edge_agent.dataform import from_plain, to_plain
from edge_agent.ingest.settings import IngestSettings
from tests.support.gateway import ROOT, to_toml
from tests.support.mosquitto import MosquittoBroker


def ingest_settings(
    workdir: Path, upstream: MosquittoBroker, database: str, **overrides: object
) -> IngestSettings:
    """An ingest on the (TLS) upstream broker of the gateway rig, prefix ``cloud/v1``."""
    tls: dict[str, object] = {"enabled": False}
    if upstream.tls is not None:
        tls = {
            "enabled": True,
            "ca_file": str(upstream.tls.ca),
            "cert_file": str(upstream.tls.client_cert),
            "key_file": str(upstream.tls.client_key),
        }
    plain: dict[str, object] = {
        "mqtt": {
            "port": upstream.port,
            "client_id": "test-ingest",
            "protocol": "5",
            "topic_prefix": "cloud/v1",
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1.0,
            "max_inflight": 100,
            "tls": tls,
        },
        "database": database,
        "data_dir": str(workdir / "ingest"),
        "trust_store": str(workdir / "trust.json"),
        "evidence_wait_s": 2.0,
        **overrides,
    }
    return from_plain(IngestSettings, plain)


def ingest_config_file(path: Path, settings: IngestSettings) -> Path:
    """``settings`` as an edge-agent TOML config with an ``[ingest]`` section."""
    plain = to_plain(settings)
    assert isinstance(plain, dict)
    path.write_text(to_toml({"ingest": _without_none(plain)}))
    return path


def _without_none(plain: dict[str, object]) -> dict[str, object]:
    """TOML has no null: leave unset keys out, in nested tables too."""
    return {
        k: _without_none(v) if isinstance(v, dict) else v for k, v in plain.items() if v is not None
    }


class IngestProcess:
    """``python -m edge_agent ingest --config FILE`` as a child process (SIGKILL-able)."""

    def __init__(self, config: Path, log: Path, *args: str) -> None:
        self.config = config
        self.log = log
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the worker."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "edge_agent",
                    "--log-format",
                    "json",
                    "ingest",
                    "--config",
                    str(self.config),
                    *self.args,
                ],
                stdout=log,
                stderr=log,
                env=env,
            )

    def kill(self) -> None:
        """SIGKILL: no clean-up, no acks."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL if it hangs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
