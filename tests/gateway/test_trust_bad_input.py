"""A trust store edited into an impossible date while the gateway runs: one log line, the old
store kept (issue 15: a ValueError traceback per batch)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from edge_agent.gateway.pipeline import Gateway
from edge_agent.gateway.settings import GatewaySettings
from edge_agent.signing.keys import init_keys
from edge_agent.signing.trust import TrustStore
from edge_agent.uplink.settings import MqttSettings, OutboxSettings


def test_bad_date_on_reload_logs_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    init_keys(tmp_path / "keys")
    trust_path = tmp_path / "trust.json"
    store = TrustStore.load(trust_path, create=True)
    kid = store.add((tmp_path / "keys/station.pub.pem").read_bytes(), station="st01", site="s1")
    store.save()
    gateway = Gateway(
        GatewaySettings(
            trust_store=trust_path,
            data_dir=tmp_path / "gw",
            outbox=OutboxSettings(min_free_disk_bytes=0),
            upstream_mqtt=MqttSettings(port=1883),
        )
    )
    try:
        plain = json.loads(trust_path.read_text())
        plain["keys"][kid.hex()]["not_after"] = "2026-13-45T00:00:00Z"
        trust_path.write_text(json.dumps(plain))
        stamp = trust_path.stat().st_mtime + 5
        os.utime(trust_path, (stamp, stamp))
        before = gateway.trust
        with caplog.at_level(logging.INFO, logger="edge_agent.gateway"):
            for _ in range(3):  # one call per batch
                gateway._reload_trust_if_changed()
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        assert errors[0].exc_info is None
        assert "not_after" in errors[0].getMessage() and "2026-13-45" in errors[0].getMessage()
        assert gateway.trust is before
    finally:
        gateway.stop()
