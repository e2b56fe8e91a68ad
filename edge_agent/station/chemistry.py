"""Chemistry helpers of the station; the one table lives in ``edge_agent.bms.chemistry``."""

from __future__ import annotations

from edge_agent.bms.chemistry import (
    DEFAULT_BAND,
    LITHIUM_ION_FAMILY,
    deep_discharge_v,
    energy_band,
    resolve,
    same_chemistry,
)

__all__ = [
    "DEFAULT_BAND",
    "LITHIUM_ION_FAMILY",
    "deep_discharge_v",
    "energy_band",
    "resolve",
    "same_chemistry",
]
