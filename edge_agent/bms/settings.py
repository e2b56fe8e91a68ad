"""Config section of BMS acquisition (CAN and Modbus)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.dataform import bounded


@dataclass(frozen=True, kw_only=True)
class CanSettings:
    """A python-can bus: interface, channel and bitrate as python-can names them.

    ``replay`` names a python-can log file (.log/.asc/.blf/...) read instead of a live bus.
    ``open_delay_s`` is slcan's ``sleep_after_open`` (None keeps python-can's 2 s default,
    which some USB adapters need; pty links and tests use 0).
    """

    interface: str = "virtual"
    channel: str = "vcan0"
    bitrate: int = bounded(10_000, 1_000_000, default=250_000)
    replay: str = ""
    open_delay_s: float | None = bounded(0.0, 10.0, default=None)
    tty_baudrate: int = bounded(9600, 4_000_000, default=115200)


@dataclass(frozen=True, kw_only=True)
class ModbusSettings:
    """A Modbus device: ``tcp://host:port`` or ``rtu:///dev/ttyX?baud=19200``."""

    url: str = ""
    device_id: int = bounded(0, 247, default=1)
    timeout_s: float = bounded(0.01, 60.0, default=1.0)
    retries: int = bounded(0, 10, default=2)
    inter_frame_delay_s: float = bounded(0.0, 5.0, default=0.0)


@dataclass(frozen=True, kw_only=True)
class BmsSettings:
    """Which profile to use and how to reach the bus."""

    profile: str = "gbt27930-generic"
    profile_dirs: tuple[Path, ...] = ()
    can: CanSettings = field(default_factory=CanSettings)
    modbus: ModbusSettings = field(default_factory=ModbusSettings)
    timeout_s: float = bounded(0.1, 120.0, default=10.0)
