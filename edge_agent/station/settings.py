"""Config sections of the station workflow: identity of the station, timeouts, triage.

``StationConfig`` is what the station reads of the whole configuration; the station takes it
as a protocol so that nothing below ``edge_agent.commands`` imports ``edge_agent.config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from edge_agent.bms.settings import BmsSettings
from edge_agent.dataform import bounded, pattern
from edge_agent.nodes.settings import NodeSettings
from edge_agent.signing.settings import SigningSettings
from edge_agent.uplink.settings import UplinkSettings
from edge_agent.vision.settings import LabelSettings


@dataclass(frozen=True, kw_only=True)
class SourcePolicy:
    """Timeout and retries for one source during an identification."""

    timeout_s: float = bounded(0.05, 600.0, default=5.0)
    retries: int = bounded(0, 10, default=1)
    required: bool = False


@dataclass(frozen=True, kw_only=True)
class TriageSettings:
    """Thresholds for disposition (reuse vs recycle). ADR sets none; these are site policy."""

    reuse_min_soh_pct: float = bounded(0.0, 100.0, default=70.0)
    reuse_max_cell_spread_v: float = bounded(0.0, 5.0, default=0.1)
    critical_temperature_c: float = bounded(20.0, 200.0, default=60.0)
    min_cell_voltage_v: float = bounded(0.0, 5.0, default=2.0)


@dataclass(frozen=True, kw_only=True)
class IntakeSettings:
    """Defaults for the intake record a recycler reports ([station.intake]); flags override."""

    consignor_name: str | None = pattern(r"[^\x00-\x1f]{1,200}", default=None)  # usual sender
    consignor_uscc: str | None = pattern(r"[0-9A-Za-z]{18}", default=None)  # GB 32100, checked
    technician: str | None = pattern(r"[^\x00-\x1f]{1,64}", default=None)  # id at this bench
    # Regulation (EU) 2023/1542 category when the pack profile does not state one
    battery_category: str = pattern(r"(ev|industrial|stationary|lmt)?", default="")
    # EU status of a reuse candidate: repurposed (second life) or re-used (same purpose)
    reuse_status: str = pattern(r"for_repurposing|for_reuse", default="for_repurposing")
    packs_in_equipment: bool = False  # packs arrive in or with equipment: UN 3481, not 3480

    def __post_init__(self) -> None:
        if self.consignor_uscc is not None:
            from edge_agent.codes.uscc import parse_uscc

            # a CodeError names the position and reason; the event carries the upper-case form
            object.__setattr__(self, "consignor_uscc", parse_uscc(self.consignor_uscc))


@dataclass(frozen=True, kw_only=True)
class DockSettings:
    """How dock triggers become identifications ([station.dock])."""

    # triggers this close to the first one (dock switch, weight rise, BMS traffic) belong to
    # the same docking; the first one starts the identification at once
    merge_window_s: float = bounded(0.0, 600.0, default=10.0)


@dataclass(frozen=True, kw_only=True)
class StationSettings:
    """Who this station is, where it keeps its data, and how it runs identifications."""

    site: str = pattern(r"[A-Za-z0-9_-]{1,64}", default="site-1")
    station: str = pattern(r"[A-Za-z0-9_-]{1,64}", default="bench-1")
    data_dir: Path = Path("~/.local/share/edge-agent").expanduser()
    bms: SourcePolicy = field(default_factory=lambda: SourcePolicy(timeout_s=6.0))
    label: SourcePolicy = field(default_factory=lambda: SourcePolicy(timeout_s=3.0))
    weight: SourcePolicy = field(default_factory=lambda: SourcePolicy(timeout_s=5.0))
    dock_weight_threshold_kg: float = bounded(0.0, 10000.0, default=2.0)
    # --- intake record and docking (issue 14) ---
    enterprise_id: str | None = pattern(r"[^\x00-\x1f]{1,64}", default=None)  # this site's id
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    dock: DockSettings = field(default_factory=DockSettings)
    triage: TriageSettings = field(default_factory=TriageSettings)
    # GB/T 34014 manufacturer code -> names a BMS may report for it (site-maintained; only the
    # CATL example is from a public source, see reference/standards.md 1.1).
    manufacturers: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"001": ("CATL", "Contemporary Amperex")}
    )


@dataclass(frozen=True, kw_only=True)
class MetricsSettings:
    """Prometheus endpoint; port 0 turns it off."""

    host: str = "127.0.0.1"
    port: int = bounded(0, 65535, default=0)


class StationConfig(Protocol):
    """The config sections a station reads (``edge_agent.config.AgentConfig`` has them all)."""

    @property
    def station(self) -> StationSettings:
        """Who the station is, its data directory, per-source policies, triage."""

    @property
    def signing(self) -> SigningSettings:
        """The station key."""

    @property
    def bms(self) -> BmsSettings:
        """Pack profile and the CAN and Modbus buses."""

    @property
    def label(self) -> LabelSettings:
        """The label camera."""

    @property
    def nodes(self) -> NodeSettings:
        """Scale and sensor nodes."""

    @property
    def uplink(self) -> UplinkSettings:
        """Outbox and MQTT."""

    @property
    def metrics(self) -> MetricsSettings:
        """Prometheus endpoint."""
