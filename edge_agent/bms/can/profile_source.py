"""The CAN composite: every method a CAN profile lists, run on one bus into one ``BmsReading``.

``bms.registry.open_bms`` returns it for CAN profiles.
"""

from __future__ import annotations

from edge_agent.bms.can.source_base import CanMethodSource


class CanProfileSource(CanMethodSource):
    """Runs the CAN methods the profile lists, in order, on one bus."""

    name = "can"
