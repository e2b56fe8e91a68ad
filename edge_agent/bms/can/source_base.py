"""The CAN ``BmsSource``: opens one bus, runs the profile's methods in order, merges them.

Each CAN method is a ``CanMethodSource`` subclass registered by name in ``bms.registry``; its
async ``collect(bus, profile, out, budget_s)`` writes into a shared
``ReadingBuilder`` and raises a ``BmsError`` subclass when it gets nothing. A failing method
becomes a problem line ("uds: ...") and the next method still runs on the same bus.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from edge_agent.bms.can.bus import BusSession
from edge_agent.bms.can.reading import ReadingBuilder
from edge_agent.bms.profile import PackProfile
from edge_agent.bms.registry import method_class, profile_method_classes
from edge_agent.bms.settings import BmsSettings, CanSettings
from edge_agent.bms.source import BmsSource
from edge_agent.errors import BmsError, ConfigError
from edge_agent.model import BmsReading

log = logging.getLogger(__name__)

MARGIN_S = 0.3  # finish (and close the bus) before BmsSource.read's hard timeout cancels us


def can_method(name: str) -> type[CanMethodSource]:
    """The registered class of CAN method ``name`` (its ``collect`` runs on a shared bus)."""
    cls = method_class(name)
    if not issubclass(cls, CanMethodSource):
        raise ConfigError(f"method {name!r} is not a CAN method", key_path="methods")
    return cls


class CanMethodSource(BmsSource):
    """Runs CAN methods (all of the profile's, or a fixed subset) on one bus."""

    name = "can"
    transport = "can"
    fixed_methods: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_profile(
        cls, profile: PackProfile, settings: BmsSettings, *, record: Path | None = None
    ) -> CanMethodSource:
        """A source on ``settings.can`` for ``profile`` (``record``: also write a CAN log)."""
        return cls(profile=profile, can=settings.can, record=record)

    @staticmethod
    async def collect(
        bus: BusSession, profile: PackProfile, out: ReadingBuilder, budget_s: float
    ) -> None:
        """Run this one method on ``bus`` and write what it decoded into ``out``."""
        raise NotImplementedError("a CAN method class defines collect")

    def __init__(
        self, *, profile: PackProfile, can: CanSettings, record: Path | None = None
    ) -> None:
        if profile.transport != "can":
            raise ConfigError(f"profile {profile.name!r} is for {profile.transport}, not CAN")
        self.profile = profile
        # the pack dictates its bus speed: the profile's bitrate wins over the config default
        self.can = replace(can, bitrate=profile.bitrate)
        if not self.fixed_methods:
            profile_method_classes(profile)  # known methods of this transport, at least one
        self.methods = self.fixed_methods or profile.methods
        self._method_classes = {method: can_method(method) for method in self.methods}
        self.record = record

    async def _read_internal(self, timeout: float) -> BmsReading:
        end = time.monotonic() + max(0.05, timeout - MARGIN_S)
        out = ReadingBuilder(
            transport="replay" if self.can.replay else "can", profile=self.profile.name
        )
        errors: list[BmsError] = []
        async with BusSession(self.can, record=self.record) as bus:
            for method in self.methods:
                budget = end - time.monotonic()
                if budget <= 0:
                    out.problems.append(f"{method}: skipped, no time left")
                    out.failed_methods.append(method)
                    continue
                try:
                    collect = self._method_classes[method].collect
                    await collect(bus, self.profile, out, budget)
                    out.methods.append(method)
                except BmsError as exc:
                    log.warning("%s failed: %s: %s", method, type(exc).__name__, exc)
                    errors.append(exc)
                    out.failed_methods.append(method)
                    out.problems.append(f"{method}: {exc}")
        if not out.has_data() and len(self.methods) == 1 and len(errors) == 1:
            # return the reason ourselves: BmsSource.read maps every TimeoutError (and so
            # BusTimeoutError) to a generic "did not answer" text
            out.problems[:] = [str(errors[0])]
        reading = out.build(self.profile.limits)
        if not reading.methods:
            reading = replace(reading, methods=tuple(self.methods))
        return reading
