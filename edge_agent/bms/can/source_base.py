"""The CAN ``BmsSource``: opens one bus, runs the profile's methods in order, merges them.

Each method is an async ``collect(bus, profile, out, budget_s)`` that writes into a shared
``ReadingBuilder`` and raises a ``BmsError`` subclass when it gets nothing. A failing method
becomes a problem line ("uds: ...") and the next method still runs on the same bus.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from edge_agent.bms.can.bus import BusSession
from edge_agent.bms.can.reading import Limits, ReadingBuilder
from edge_agent.bms.profile import PackProfile
from edge_agent.bms.settings import CanSettings
from edge_agent.bms.source import BmsSource
from edge_agent.errors import BmsError, ConfigError
from edge_agent.model import BmsReading

log = logging.getLogger(__name__)

Collect = Callable[[BusSession, PackProfile, ReadingBuilder, float], Awaitable[None]]

# method name -> (module, function); imported lazily like the backends
METHODS: dict[str, tuple[str, str]] = {
    "gbt27930": ("edge_agent.bms.can.gbt27930_source", "collect_gbt"),
    "uds": ("edge_agent.bms.can.uds_source", "collect_uds"),
    "dbc": ("edge_agent.bms.can.dbc_source", "collect_dbc"),
}
MARGIN_S = 0.3  # finish (and close the bus) before BmsSource.read's hard timeout cancels us


def method_function(name: str) -> Collect:
    """The collect function of CAN method ``name``."""
    try:
        module_name, func_name = METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown CAN method {name!r} (known: {', '.join(METHODS)})") from None
    func: Collect = getattr(importlib.import_module(module_name), func_name)
    return func


def limits_of(profile: PackProfile) -> Limits:
    """The profile's plausibility limits in the builder's form."""
    p = profile.limits
    return Limits(
        pack_voltage_v=p.pack_voltage_v,
        cell_voltage_v=p.cell_voltage_v,
        temperature_c=p.temperature_c,
        soc_pct=p.soc_pct,
        max_cell_spread_v=p.max_cell_spread_v,
    )


class CanMethodSource(BmsSource):
    """Runs CAN methods (all of the profile's, or a fixed subset) on one bus."""

    name = "can"
    transport = "can"
    fixed_methods: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, *, profile: PackProfile, can: CanSettings, record: Path | None = None
    ) -> None:
        if profile.transport != "can":
            raise ConfigError(f"profile {profile.name!r} is for {profile.transport}, not CAN")
        self.profile = profile
        # the pack dictates its bus speed: the profile's bitrate wins over the config default
        self.can = replace(can, bitrate=profile.bitrate)
        methods = self.fixed_methods or tuple(m for m in profile.methods if m in METHODS)
        if not methods:
            raise ConfigError(f"profile {profile.name!r} lists no CAN method", key_path="methods")
        self.methods = methods
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
                collect = method_function(method)
                try:
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
        reading = out.build(limits_of(self.profile))
        if not reading.methods:
            reading = replace(reading, methods=tuple(self.methods))
        return reading
