"""Read planning (pure): coalesce register spans into as few Modbus reads as possible."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_READ = 125  # registers per Read Holding Registers request (Modbus spec limit)
DEFAULT_MAX_GAP = 24  # unread registers cost less than one extra round trip up to about here


@dataclass(frozen=True, order=True)
class ReadBlock:
    """One read request: ``count`` registers from ``address``."""

    address: int
    count: int

    @property
    def end(self) -> int:
        """First address after the block."""
        return self.address + self.count


def plan_reads(
    spans: Iterable[tuple[int, int]],
    *,
    max_count: int = MAX_READ,
    max_gap: int = DEFAULT_MAX_GAP,
) -> list[ReadBlock]:
    """Cover every ``(address, count)`` span with the fewest reads of at most ``max_count``.

    Neighbouring spans are merged when the unread gap between them is at most ``max_gap``
    registers (bridging is cheaper than a round trip); overlaps are merged always.
    """
    if not 1 <= max_count <= MAX_READ:
        raise ValueError(f"max_count must be 1..{MAX_READ}, got {max_count}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    # Union of the spans first, so overlapping points never cost twice.
    intervals: list[list[int]] = []
    for address, count in sorted(s for s in spans if s[1] > 0):
        if address < 0 or address + count > 0x10000:
            raise ValueError(f"span {address}+{count} outside the register space")
        if intervals and address <= intervals[-1][1]:
            intervals[-1][1] = max(intervals[-1][1], address + count)
        else:
            intervals.append([address, address + count])
    blocks: list[ReadBlock] = []
    start: int | None = None
    end = 0
    for lo, hi in intervals:
        cursor = lo
        while cursor < hi:
            if start is not None and cursor - end <= max_gap and cursor + 1 - start <= max_count:
                # extend the open block as far as the limit allows
                end = min(hi, start + max_count)
                cursor = end
                if end - start == max_count:
                    blocks.append(ReadBlock(start, end - start))
                    start = None
                continue
            if start is not None:
                blocks.append(ReadBlock(start, end - start))
            start = cursor
            end = min(hi, cursor + max_count)
            cursor = end
            if end - start == max_count:
                blocks.append(ReadBlock(start, end - start))
                start = None
    if start is not None:
        blocks.append(ReadBlock(start, end - start))
    return blocks
