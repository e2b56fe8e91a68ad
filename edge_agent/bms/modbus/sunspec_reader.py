"""SunSpec discovery and model-chain walk over a ``ModbusLink``.

The walk reads 125-register windows ahead of the cursor, so a whole device map costs about
one round trip per 125 registers instead of one per model header; a window refused with
"illegal data address" (past the end of the map) is retried with exactly what is needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.bms.modbus.link import ModbusLink
from edge_agent.bms.modbus.planner import MAX_READ
from edge_agent.bms.modbus.sunspec_decode import DecodedModel, decode_model
from edge_agent.bms.modbus.sunspec_models import known_models, load_model
from edge_agent.errors import ModbusConnectionError, ModbusError, SunSpecError

log = logging.getLogger(__name__)

MARKER = (0x5375, 0x6E53)  # "SunS"
END_ID = 0xFFFF
BASE_ADDRESSES = (40000, 0, 50000)
ILLEGAL_ADDRESS = 2


@dataclass(frozen=True)
class ModelHeader:
    """A model found in the chain: id, address of its ID register, and L."""

    id: int
    address: int
    length: int


@dataclass(frozen=True)
class SunSpecScan:
    """Everything read from one SunSpec device."""

    base: int
    headers: tuple[ModelHeader, ...]
    models: tuple[DecodedModel, ...]
    problems: tuple[str, ...]
    complete: bool  # the end marker was reached and every known model decoded


class _Image:
    """Registers read so far, filled on demand by windowed reads within a deadline."""

    def __init__(self, link: ModbusLink, deadline: float) -> None:
        self.link = link
        self.deadline = deadline
        self.words: dict[int, int] = {}

    async def need(self, address: int, count: int) -> list[int]:
        """Registers [address, address+count), reading missing ones in windows."""
        end = address + count
        while True:
            missing = next((a for a in range(address, end) if a not in self.words), None)
            if missing is None:
                return [self.words[a] for a in range(address, end)]
            window = min(MAX_READ, 0x10000 - missing)
            exact = min(MAX_READ, end - missing)
            try:
                words = await self.link.read_before(missing, window, self.deadline)
            except ModbusError as exc:
                if exc.exception_code != ILLEGAL_ADDRESS or window == exact:
                    raise
                window = exact  # the look-ahead ran past the map; ask for just what is needed
                words = await self.link.read_before(missing, window, self.deadline)
            self.words.update(zip(range(missing, missing + window), words, strict=True))


async def _discover(image: _Image, bases: Sequence[int]) -> int:
    failures: list[ModbusError] = []  # anything but a clean "no such address" or a wrong marker
    for base in bases:
        try:
            marker = await image.need(base, 2)
        except ModbusConnectionError:
            raise
        except ModbusError as exc:
            if exc.exception_code != ILLEGAL_ADDRESS:
                failures.append(exc)
            log.debug("no SunSpec map at %d: %s", base, exc)
            continue
        if tuple(marker) == MARKER:
            return base
    if failures:  # the map may be behind one of these: report why we could not tell
        first = failures[0]
        reasons = "; ".join(str(f) for f in failures)
        raise type(first)(
            f"no SunSpec map found: {reasons}",
            address=first.address,
            exception_code=first.exception_code,
        )
    raise SunSpecError(f"no SunS marker at {', '.join(str(b) for b in bases)}")


async def scan(
    link: ModbusLink,
    *,
    timeout: float,
    bases: Sequence[int] = BASE_ADDRESSES,
    max_models: int = 512,
) -> SunSpecScan:
    """Find the SunSpec map, walk its chain and decode every model we have a definition for.

    Raises ModbusError/SunSpecError when no map is found; failures after discovery end the
    walk and come back as ``problems`` with whatever was decoded up to that point.
    """
    image = _Image(link, asyncio.get_running_loop().time() + timeout)
    base = await _discover(image, bases)
    shipped = set(known_models())
    headers: list[ModelHeader] = []
    models: list[DecodedModel] = []
    problems: list[str] = []
    complete = False
    cursor = base + 2
    try:
        while True:
            if len(headers) >= max_models:
                raise SunSpecError(
                    f"chain has more than {max_models} models; it probably loops", address=cursor
                )
            if cursor > 0xFFFE:
                raise SunSpecError("chain runs past the end of the register space", address=cursor)
            model_id, length = await image.need(cursor, 2)
            if model_id == END_ID:
                complete = True
                break
            if (model_id, length) == MARKER:
                raise SunSpecError(f"chain loops back to a SunS marker at {cursor}", address=cursor)
            if cursor + 2 + length > 0x10000:
                raise SunSpecError(
                    f"model {model_id} at {cursor} (L={length}) runs past 65535", address=cursor
                )
            headers.append(ModelHeader(model_id, cursor, length))
            if model_id in shipped:
                words = await image.need(cursor, length + 2)
                try:
                    decoded = decode_model(load_model(model_id), words, address=cursor)
                except SunSpecError as exc:
                    problems.append(str(exc))
                else:
                    models.append(decoded)
                    problems.extend(decoded.problems)
            cursor += 2 + length
    except ModbusError as exc:  # SunSpecError included: keep what was decoded
        log.debug("SunSpec walk stopped at %d: %s", cursor, exc)  # reported by the source
        problems.append(f"chain walk stopped at {cursor}: {exc}")
    return SunSpecScan(
        base=base,
        headers=tuple(headers),
        models=tuple(models),
        problems=tuple(problems),
        complete=complete and not problems,
    )
