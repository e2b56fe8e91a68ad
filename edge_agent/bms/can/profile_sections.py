"""Profile sections for the CAN methods (GB/T 27930, UDS, DBC). Owned by the CAN backend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class GbtSection:
    """GB/T 27930 charger emulation parameters."""

    listen_s: float = 0.0  # keep listening for BCS/BSM/BMV/BMT/BSD after BCP


@dataclass(frozen=True, kw_only=True)
class UdsSection:
    """UDS over ISO-TP: request/response ids and DIDs to read."""

    tx_id: int = 0x7E0
    rx_id: int = 0x7E8


@dataclass(frozen=True, kw_only=True)
class DbcSection:
    """Passive decoding with a DBC file and a signal-to-field map."""

    file: str = ""
