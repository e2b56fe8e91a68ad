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
from datetime import UTC, datetime
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
from edge_agent.tokens.check import token_findings
from edge_agent.ui.settings import UiSettings
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
    ui: UiSettings = field(default_factory=UiSettings)


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


# --- what `config check` verifies beyond the types: the site as it will run -----------------

#: The IANA port of MQTT over TLS; plaintext there means the broker cannot answer.
MQTT_TLS_PORT = 8883


@dataclass(frozen=True, kw_only=True)
class SiteCheck:
    """Problems (``config check`` fails) and warnings (it passes, one line each on stderr)."""

    problems: tuple[ConfigError, ...] = ()
    warnings: tuple[str, ...] = ()


def data_dir_problem(path: Path, *, key_path: str) -> ConfigError | None:
    """Why ``path`` cannot hold the agent's data (a file, or a folder we may not write)."""
    path = path.expanduser()
    probe = path
    while not probe.exists():  # the nearest existing ancestor is what mkdir will need
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return ConfigError(f"{probe} is not a folder", key_path=key_path)
    if not os.access(probe, os.W_OK | os.X_OK):
        return ConfigError(f"{probe} is not writable by this user", key_path=key_path)
    return None


def check_data_dir(path: Path, *, key_path: str = "station.data_dir") -> None:
    """Raise the data_dir problem, if any (identify, run and outbox call this first)."""
    problem = data_dir_problem(path, key_path=key_path)
    if problem is not None:
        raise problem


def _mqtt_findings(key: str, settings: Any) -> tuple[list[ConfigError], list[str]]:
    problems: list[ConfigError] = []
    warnings: list[str] = []
    tls = settings.tls
    if tls.enabled and tls.insecure_skip_verify:
        warnings.append(
            f"{key}.tls.insecure_skip_verify: the broker certificate is not checked; "
            "anyone on the network can pose as the broker"
        )
    if settings.port == MQTT_TLS_PORT and not tls.enabled and not tls.plaintext_on_tls_port:
        problems.append(
            ConfigError(
                f"port {MQTT_TLS_PORT} is the MQTT-over-TLS port but tls.enabled is false; "
                "set tls.enabled = true (or tls.plaintext_on_tls_port = true if the broker "
                "really speaks plaintext there)",
                key_path=f"{key}.port",
            )
        )
    if tls.enabled:
        problems += _tls_file_problems(key, tls)
    return problems, warnings


def _tls_file_problems(key: str, tls: Any) -> list[ConfigError]:
    """Name the TLS file that would make the handshake fail, before any connection."""
    import ssl

    from cryptography import x509

    where = f"{key}.tls"
    for name in ("ca_file", "cert_file", "key_file"):
        path = getattr(tls, name)
        if path is not None and not path.is_file():
            return [ConfigError(f"file not found: {path}", key_path=f"{where}.{name}")]
    if (tls.cert_file is None) != (tls.key_file is None):
        return [ConfigError("cert_file and key_file go together", key_path=where)]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    problems: list[ConfigError] = []
    if tls.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(tls.ca_file))
        except (ssl.SSLError, OSError, ValueError) as exc:
            problems.append(
                ConfigError(f"not a PEM CA certificate: {exc}", key_path=f"{where}.ca_file")
            )
    if tls.cert_file is not None and tls.key_file is not None:
        try:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
        except (ssl.SSLError, OSError, ValueError) as exc:
            problems.append(
                ConfigError(
                    f"certificate and key do not load as a pair: {exc}",
                    key_path=f"{where}.cert_file",
                )
            )
        else:
            cert = x509.load_pem_x509_certificate(tls.cert_file.read_bytes())
            now = datetime.now(UTC)
            if cert.not_valid_after_utc < now:
                problems.append(
                    ConfigError(
                        f"client certificate expired {cert.not_valid_after_utc:%Y-%m-%d}",
                        key_path=f"{where}.cert_file",
                    )
                )
            elif cert.not_valid_before_utc > now:
                problems.append(
                    ConfigError(
                        f"client certificate not valid before {cert.not_valid_before_utc:%Y-%m-%d}",
                        key_path=f"{where}.cert_file",
                    )
                )
    return problems


def check_site(config: AgentConfig, *, gateway: bool = False) -> SiteCheck:
    """Data folders, broker connections and token sections as they will be used (stat calls,
    and reading the PIN file)."""
    problems: list[ConfigError] = []
    warnings: list[str] = []
    dirs = [("station.data_dir", config.station.data_dir)]
    sections: list[tuple[str, Any]] = [("uplink.mqtt", config.uplink.mqtt)]
    if gateway:
        dirs.append(("gateway.data_dir", config.gateway.data_dir))
        sections += [
            ("gateway.site_mqtt", config.gateway.site_mqtt),
            ("gateway.upstream_mqtt", config.gateway.upstream_mqtt),
        ]
    for key, path in dirs:
        problem = data_dir_problem(path, key_path=key)
        if problem is not None:
            problems.append(problem)
    for key, settings in sections:
        more, warned = _mqtt_findings(key, settings)
        problems += more
        warnings += warned
    tokens = [("signing.pkcs11", config.signing.pkcs11)]
    if gateway:
        tokens.append(("gateway.receipt_pkcs11", config.gateway.receipt_pkcs11))
    tokens.append(("ingest.receipt_pkcs11", config.ingest.receipt_pkcs11))
    for key, pkcs11 in tokens:
        if pkcs11 is not None:
            more, warned = token_findings(key, pkcs11)
            problems += more
            warnings += warned
    return SiteCheck(problems=tuple(problems), warnings=tuple(warnings))
