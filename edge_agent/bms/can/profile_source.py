"""The ``can`` backend: every CAN method a profile lists, merged into one ``BmsReading``.

``read_bms`` is the one call the station needs.
"""

from __future__ import annotations

from edge_agent.bms.can.source_base import CanMethodSource
from edge_agent.bms.profile import PackProfile
from edge_agent.bms.settings import CanSettings
from edge_agent.model import BmsReading


class CanProfileSource(CanMethodSource):
    """Runs the CAN methods the profile lists, in order, on one bus."""

    name = "can"


async def read_bms(profile: PackProfile, can: CanSettings, timeout: float) -> BmsReading:
    """Read a pack's BMS over CAN as the profile says; never raises for BMS failures."""
    async with CanProfileSource(profile=profile, can=can) as source:
        return await source.read(timeout)
