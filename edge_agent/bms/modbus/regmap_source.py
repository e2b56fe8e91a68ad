"""``RegisterMapSource``: read a vendor register map described by a profile's [regmap] section."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from edge_agent.bms.modbus.link import ModbusLink
from edge_agent.bms.modbus.planner import plan_reads
from edge_agent.bms.modbus.profile_sections import RegisterMapSection
from edge_agent.bms.modbus.regmap import spans, to_reading
from edge_agent.bms.profile import PackProfile
from edge_agent.bms.settings import BmsSettings, ModbusSettings
from edge_agent.bms.source import BmsSource
from edge_agent.errors import (
    ModbusConnectionError,
    ModbusError,
    ModbusTimeoutError,
    ProfileError,
)
from edge_agent.model import BmsReading

log = logging.getLogger(__name__)
ILLEGAL_ADDRESS = 2


async def read_register_map(
    link: ModbusLink, section: RegisterMapSection, *, timeout: float
) -> tuple[dict[int, int], tuple[str, ...]]:
    """Read every register of ``section`` with coalesced requests; returns (image, problems).

    A bridged read refused with "illegal data address" (the gap holds registers the device does
    not implement) is retried span by span; a dead link ends the read with what was gathered.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    wanted = spans(section)
    image: dict[int, int] = {}
    problems: list[str] = []
    for block in plan_reads(wanted, max_gap=section.max_gap):
        try:
            words = await link.read_before(block.address, block.count, deadline)
            image.update(zip(range(block.address, block.end), words, strict=True))
            continue
        except (ModbusConnectionError, ModbusTimeoutError) as exc:
            problems.append(f"read stopped at {block.address}: {exc}")
            return image, tuple(problems)
        except ModbusError as exc:
            if exc.exception_code != ILLEGAL_ADDRESS:
                problems.append(f"{block.count}@{block.address}: {exc}")
                continue
            log.debug("bridged read %s refused, reading its spans one by one", block)
        # the parts of every wanted span inside this block (a long span may cross blocks)
        inner = [
            (max(a, block.address), min(a + n, block.end) - max(a, block.address))
            for a, n in wanted
            if a < block.end and a + n > block.address
        ]
        for single in plan_reads(inner, max_gap=0):
            try:
                words = await link.read_before(single.address, single.count, deadline)
            except (ModbusConnectionError, ModbusTimeoutError) as exc:
                problems.append(f"read stopped at {single.address}: {exc}")
                return image, tuple(problems)
            except ModbusError as exc:
                problems.append(f"{single.count}@{single.address}: {exc}")
                continue
            image.update(zip(range(single.address, single.end), words, strict=True))
    return image, tuple(problems)


class RegisterMapSource(BmsSource):
    """Reads identity and state through a declarative vendor register map."""

    name = "regmap"
    transport = "modbus"

    def __init__(
        self, modbus: ModbusSettings, section: RegisterMapSection, *, profile: str = ""
    ) -> None:
        self.modbus = modbus
        self.section = section
        self.profile = profile

    @classmethod
    def from_profile(
        cls, profile: PackProfile, settings: BmsSettings, *, record: Path | None = None
    ) -> RegisterMapSource:
        """The profile's [regmap] section on ``settings.modbus``."""
        if profile.regmap is None:
            raise ProfileError("method 'regmap' needs a [regmap] section", key_path=profile.name)
        return cls(settings.modbus, profile.regmap, profile=profile.name)

    async def _read_internal(self, timeout: float) -> BmsReading:
        async with ModbusLink(self.modbus, function=self.section.function) as link:
            image, problems = await read_register_map(link, self.section, timeout=timeout * 0.95)
        for problem in problems:
            log.warning("register map %s: %s", self.profile or "?", problem)
        return to_reading(self.section, image, profile=self.profile, problems=problems)
