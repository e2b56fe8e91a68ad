"""BMS acquisition: the BmsSource seam, CAN (GB/T 27930, UDS, DBC) and Modbus backends.

``open_bms(profile, settings)`` is the one way to get a source for a pack profile; methods are
registered by name in ``registry`` (built-in table plus the ``edge_agent.bms_backends``
entry-point group).
"""

from edge_agent.bms.registry import (
    ENTRY_POINT_GROUP,
    known_methods,
    method_class,
    open_bms,
    read_bms,
)
from edge_agent.bms.source import BmsSource

__all__ = [
    "ENTRY_POINT_GROUP",
    "BmsSource",
    "known_methods",
    "method_class",
    "open_bms",
    "read_bms",
]
