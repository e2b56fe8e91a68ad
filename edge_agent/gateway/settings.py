"""Config section of the site gateway."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.dataform import bounded
from edge_agent.uplink.settings import MqttSettings


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    """Site broker in, upstream broker out, trust store and limits."""

    site_mqtt: MqttSettings = field(default_factory=MqttSettings)
    upstream_mqtt: MqttSettings = field(default_factory=lambda: MqttSettings(port=8883))
    upstream_prefix: str = "battrace/v1"
    trust_store: Path = Path("~/.local/share/edge-agent/gateway/trust.json").expanduser()
    data_dir: Path = Path("~/.local/share/edge-agent/gateway").expanduser()
    max_message_bytes: int = bounded(256, 16 * 1024**2, default=64 * 1024)
    max_evidence_bytes: int = bounded(1024, 64 * 1024**2, default=8 * 1024**2)
    replay_window: int = bounded(1, 1024, default=32)
    quarantine_topic: str = ""
