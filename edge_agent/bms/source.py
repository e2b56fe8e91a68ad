"""The ``BmsSource`` seam: one abstract class, backends registered by name, imported lazily.

Backends override only ``_read_internal``; ``read`` applies the timeout and turns any
``BmsError`` into a failed ``BmsReading`` with the reason, so a dead BMS never crashes an
identification (python-can's ``recv``/``_recv_internal`` split).
"""

from __future__ import annotations

import abc
import asyncio
import importlib
import logging
import time
from typing import Any, ClassVar

from edge_agent.errors import BmsError, ConfigError
from edge_agent.model import BmsReading

log = logging.getLogger(__name__)

# name -> (module, class); imported only when used.
BACKENDS: dict[str, tuple[str, str]] = {
    "gbt27930": ("edge_agent.bms.can.gbt27930_source", "GbtSource"),
    "uds": ("edge_agent.bms.can.uds_source", "UdsSource"),
    "dbc": ("edge_agent.bms.can.dbc_source", "DbcSource"),
    "can": ("edge_agent.bms.can.profile_source", "CanProfileSource"),
    "sunspec": ("edge_agent.bms.modbus.sunspec_source", "SunSpecSource"),
    "regmap": ("edge_agent.bms.modbus.regmap_source", "RegisterMapSource"),
    "modbus": ("edge_agent.bms.modbus.profile_source", "ModbusProfileSource"),
}


class BmsSource(abc.ABC):
    """Reads identity and state from one pack's BMS."""

    name: ClassVar[str] = "abstract"
    transport: ClassVar[str] = ""

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


def backend_class(name: str) -> type[BmsSource]:
    """Import and return the backend class registered as ``name``."""
    try:
        module_name, class_name = BACKENDS[name]
    except KeyError:
        raise ConfigError(
            f"unknown BMS backend {name!r} (known: {', '.join(sorted(BACKENDS))})"
        ) from None
    module = importlib.import_module(module_name)
    cls: Any = getattr(module, class_name)
    return cls  # type: ignore[no-any-return]
