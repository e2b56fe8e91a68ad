"""``SunSpecSource``: discover a SunSpec map and read battery models 1 and 802-805."""

from __future__ import annotations

import logging
from pathlib import Path

from edge_agent.bms.modbus.link import ModbusLink
from edge_agent.bms.modbus.profile_sections import SunSpecSection
from edge_agent.bms.modbus.sunspec_map import to_reading
from edge_agent.bms.modbus.sunspec_reader import scan
from edge_agent.bms.profile import PackProfile
from edge_agent.bms.settings import BmsSettings, ModbusSettings
from edge_agent.bms.source import BmsSource
from edge_agent.model import BmsReading

log = logging.getLogger(__name__)


class SunSpecSource(BmsSource):
    """Reads a SunSpec battery (models 1, 802, 803, 804, 805) over Modbus TCP or RTU."""

    name = "sunspec"
    transport = "modbus"

    def __init__(
        self, modbus: ModbusSettings, section: SunSpecSection | None = None, *, profile: str = ""
    ) -> None:
        self.modbus = modbus
        self.section = section or SunSpecSection()
        self.profile = profile
        self.round_trips = 0  # of the last read, for benchmarks and diagnostics

    @classmethod
    def from_profile(
        cls, profile: PackProfile, settings: BmsSettings, *, record: Path | None = None
    ) -> SunSpecSource:
        """The profile's [sunspec] section (or the defaults) on ``settings.modbus``."""
        return cls(settings.modbus, profile.sunspec, profile=profile.name)

    async def _read_internal(self, timeout: float) -> BmsReading:
        async with ModbusLink(self.modbus) as link:
            try:
                # leave a little of the caller's budget to build the reading from what we got
                result = await scan(
                    link,
                    timeout=timeout * 0.95,
                    bases=self.section.base_addresses,
                    max_models=self.section.max_models,
                )
            finally:
                self.round_trips = link.round_trips
        for problem in result.problems:
            log.warning("SunSpec device at %s: %s", self.modbus.url, problem)
        return to_reading(result, profile=self.profile)
