"""Typed configuration from a TOML file, validated once at load.

Precedence: command-line flags > environment > config file > defaults. Environment overrides
use ``EDGE_AGENT__SECTION__KEY=value`` (double underscores between key parts, value parsed as a
TOML scalar, e.g. ``EDGE_AGENT__UPLINK__MQTT__PORT=1884``).

Search path when ``--config`` is not given: ``$EDGE_AGENT_CONFIG``, ``./edge-agent.toml``,
``~/.config/edge-agent/config.toml``, ``/etc/edge-agent/config.toml``; none found means
defaults. A bad file names the key path and the problem and the CLI exits with status 2.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.bms.settings import BmsSettings
from edge_agent.dataform import from_plain
from edge_agent.errors import ConfigError
from edge_agent.gateway.settings import GatewaySettings
from edge_agent.ingest.settings import IngestSettings
from edge_agent.nodes.settings import NodeSettings
from edge_agent.signing.settings import SigningSettings
from edge_agent.station.settings import MetricsSettings, StationSettings
from edge_agent.uplink.settings import UplinkSettings
from edge_agent.vision.settings import LabelSettings

ENV_PREFIX = "EDGE_AGENT__"
SEARCH_PATH = (
    Path("edge-agent.toml"),
    Path("~/.config/edge-agent/config.toml"),
    Path("/etc/edge-agent/config.toml"),
)


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """The whole configuration of a station agent or gateway."""

    station: StationSettings = field(default_factory=StationSettings)
    signing: SigningSettings = field(default_factory=SigningSettings)
    bms: BmsSettings = field(default_factory=BmsSettings)
    label: LabelSettings = field(default_factory=LabelSettings)
    nodes: NodeSettings = field(default_factory=NodeSettings)
    uplink: UplinkSettings = field(default_factory=UplinkSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)


def find_config_file(explicit: Path | None = None) -> Path | None:
    """The config file to load, following the documented search path."""
    if explicit is not None:
        return explicit
    env = os.environ.get("EDGE_AGENT_CONFIG")
    if env:
        return Path(env)
    for candidate in SEARCH_PATH:
        path = candidate.expanduser()
        if path.is_file():
            return path
    return None


def load_config(
    path: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> AgentConfig:
    """Read, merge environment overrides and validate; ConfigError on any problem."""
    file = find_config_file(path)
    data: dict[str, Any] = {}
    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {file}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    apply_env_overrides(data, os.environ if environ is None else environ)
    return config_from_plain(data)


def config_from_plain(data: Mapping[str, Any]) -> AgentConfig:
    """Validate an already-parsed TOML document."""
    return from_plain(AgentConfig, data, error=ConfigError)


def apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Merge ``EDGE_AGENT__A__B=value`` variables into ``data`` in place."""
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__") if k]
        if not keys:
            continue
        node = data
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    "environment override conflicts with a value", key_path=".".join(keys)
                )
            node = child
        node[keys[-1]] = _parse_scalar(raw)


def _parse_scalar(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
