"""The ``BmsSource`` seam: one abstract class; backends are registered by method name and
imported lazily in ``registry`` (``open_bms`` is the one way to get a source for a profile).

Backends override only ``_read_internal``; ``read`` applies the timeout and turns any
``BmsError`` into a failed ``BmsReading`` with the reason, so a dead BMS never crashes an
identification (python-can's ``recv``/``_recv_internal`` split).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from edge_agent.errors import BmsError, ConfigError
from edge_agent.model import BmsReading

if TYPE_CHECKING:
    from edge_agent.bms.profile import PackProfile
    from edge_agent.bms.settings import BmsSettings

log = logging.getLogger(__name__)


class BmsSource(abc.ABC):
    """Reads identity and state from one pack's BMS."""

    name: ClassVar[str] = "abstract"
    transport: ClassVar[str] = ""

    @classmethod
    def from_profile(
        cls, profile: PackProfile, settings: BmsSettings, *, record: Path | None = None
    ) -> BmsSource:
        """A source for ``profile`` reached through ``settings`` (``record``: CAN log file)."""
        raise ConfigError(f"BMS backend {cls.name!r} cannot be opened from a pack profile")

    async def read(self, timeout: float) -> BmsReading:
        """Read the BMS within ``timeout`` seconds; failures become a failed reading."""
        started = time.perf_counter()
        try:
            reading = await asyncio.wait_for(self._read_internal(timeout), timeout)
        except BmsError as exc:
            log.warning("bms read failed: %s: %s", type(exc).__name__, exc)
            reading = BmsReading(
                status="failed",
                transport=self.transport,
                methods=(self.name,),
                problems=(str(exc),),
            )
        except TimeoutError:
            reading = BmsReading(
                status="failed",
                transport=self.transport,
                methods=(self.name,),
                problems=(f"BMS did not answer within {timeout:g} s",),
            )
        elapsed = (time.perf_counter() - started) * 1000.0
        return _with_duration(reading, elapsed)

    @abc.abstractmethod
    async def _read_internal(self, timeout: float) -> BmsReading:
        """Backend-specific acquisition; may raise ``BmsError`` subclasses."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release buses and connections."""

    async def __aenter__(self) -> BmsSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _with_duration(reading: BmsReading, ms: float) -> BmsReading:
    from dataclasses import replace

    return replace(reading, duration_ms=round(ms, 3))
