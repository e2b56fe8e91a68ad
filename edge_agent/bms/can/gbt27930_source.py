"""``gbt27930`` method: read a BMS by emulating a GB/T 27930 charger (see gbt27930_session)."""

from __future__ import annotations

from edge_agent.bms.can.bus import BusSession
from edge_agent.bms.can.gbt27930_session import GbtSession, problems_of
from edge_agent.bms.can.profile_sections import GbtSection
from edge_agent.bms.can.reading import ReadingBuilder
from edge_agent.bms.can.source_base import CanMethodSource
from edge_agent.bms.profile import PackProfile


async def collect_gbt(
    bus: BusSession, profile: PackProfile, out: ReadingBuilder, budget_s: float
) -> None:
    """Run the charger handshake and write what was decoded into ``out``."""
    section = profile.gbt27930 or GbtSection()
    session = GbtSession(bus, section)
    collector = await session.run(budget_s)
    collector.apply(out)
    out.problems.extend(problems_of(collector, section))


class GbtSource(CanMethodSource):
    """A BmsSource that uses only GB/T 27930 charger emulation."""

    name = "gbt27930"
    fixed_methods = ("gbt27930",)
    collect = staticmethod(collect_gbt)
