"""The send window: rows published and awaiting PUBACK, and the feed of rows to publish next.

Both live on the drainer thread only (no locks). The window is bounded by a count
(``max_inflight``) and by payload bytes (``max_inflight_bytes``: evidence photos are
megabytes); one row may always go, however big.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.uplink.outbox import Outbox, OutboxRow


@dataclass(slots=True)
class Flight:
    """One published row awaiting its PUBACK."""

    row_id: int
    key: str
    attempts: int
    sent: float  # monotonic
    created: float  # wall clock of the outbox commit
    size: int


class SendWindow:
    """Flights by MQTT message id, bounded by count and bytes."""

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.flights: dict[int, Flight] = {}
        self.rows: set[int] = set()  # row ids in flight (a row is never sent twice at once)
        self.bytes = 0

    def __len__(self) -> int:
        return len(self.flights)

    def is_open(self) -> bool:
        """Room for one more row."""
        if len(self.flights) >= self.max_count:
            return False
        return not self.flights or self.bytes < self.max_bytes

    def add(self, mid: int, flight: Flight) -> None:
        """Record a publish under its message id."""
        self.flights[mid] = flight
        self.bytes += flight.size
        self.rows.add(flight.row_id)

    def pop(self, mid: int) -> Flight | None:
        """The flight acknowledged by ``mid`` (None: a status message or one given up)."""
        flight = self.flights.pop(mid, None)
        if flight is not None:
            self.bytes -= flight.size
            self.rows.discard(flight.row_id)
        return flight

    def clear(self) -> None:
        """Forget every flight (a new paho client: its predecessor's mids are gone)."""
        self.flights.clear()
        self.rows.clear()
        self.bytes = 0

    def give_up(self, is_stale: Callable[[Flight], bool]) -> list[Flight]:
        """Remove and return the flights ``is_stale`` picks (they will be sent again)."""
        stale = [mid for mid, f in self.flights.items() if is_stale(f)]
        return [f for f in (self.pop(mid) for mid in stale) if f is not None]


class RowFeed:
    """Walks the outbox by row id in window-sized reads; starts over every ``rescan_s``.

    Rows behind the cursor that became due again (back-off over, ``outbox retry``, flights
    given up) are found by the next rewind; rows in flight or acked but not yet deleted are
    skipped by the caller's ``skip``.
    """

    def __init__(self, outbox: Outbox, rescan_s: float) -> None:
        self._outbox = outbox
        self._rescan_s = rescan_s
        self._prefetch: deque[OutboxRow] = deque()
        self._cursor = 0
        self.next_rescan = 0.0  # monotonic

    def rewind(self) -> None:
        """Look again from the first row."""
        self._cursor = 0
        self._prefetch.clear()
        self.next_rescan = time.monotonic() + self._rescan_s

    def rescan_by(self, when: float) -> None:
        """Rewind no later than ``when`` (monotonic): a row becomes due then."""
        self.next_rescan = min(self.next_rescan, when)

    def next_row(self, count: int, max_bytes: int, skip: Callable[[int], bool]) -> OutboxRow | None:
        """The next due row not skipped; reads up to ``count`` rows / ``max_bytes`` at a time."""
        while not self._prefetch:
            rows = self._outbox.fetch(self._cursor, count, max_bytes=max_bytes)
            if not rows:
                return None
            self._cursor = rows[-1].id
            self._prefetch.extend(r for r in rows if not skip(r.id))
        return self._prefetch.popleft()
