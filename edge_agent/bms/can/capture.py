"""Read, record and replay CAN BMS sessions with typed settings (the CLI is ``commands.bms``).

A session with a profile reads the pack once (optionally recording the bus to a python-can log:
.log/.asc/.blf); a replay is the same read with ``CanSettings.replay`` set; a bare capture
records the bus for a while without talking to it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge_agent.bms.can.bus import BusSession
from edge_agent.bms.profile import PackProfile
from edge_agent.bms.registry import read_bms
from edge_agent.bms.settings import BmsSettings, CanSettings
from edge_agent.model import BmsReading

__all__ = ["read_session", "record_bus"]


async def read_session(
    profile: PackProfile, can: CanSettings, timeout: float, record: Path | None
) -> BmsReading:
    """Read the pack once with ``profile``; also record the bus to ``record`` when given."""
    return await read_bms(profile, BmsSettings(can=can), timeout, record=record)


async def record_bus(can: CanSettings, out: Path, duration_s: float) -> None:
    """Record the bus to ``out`` for ``duration_s`` seconds without sending anything."""
    async with BusSession(can, record=out):
        await asyncio.sleep(duration_s)
