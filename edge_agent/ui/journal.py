"""Today's packs on disk: ``kiosk-today.jsonl`` in the data directory, one event per line.

The bench page lists today's packs from small rows in memory and reads an event back from its
line (by byte offset) when a pack page or a correction needs all of it: a busy day's 2000
events held whole cost a ``run`` process ~55 MB. The file is a convenience for the page; the
outbox holds the record, so a line that cannot be written or read is logged, never fatal.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

from edge_agent.errors import EdgeAgentError
from edge_agent.event_codec import event_from_plain, event_to_plain
from edge_agent.model import IdentificationEvent

log = logging.getLogger(__name__)
JOURNAL = "kiosk-today.jsonl"
Row = TypeVar("Row")


@dataclass(frozen=True)
class Journal:
    """The journal file (``path`` None: no data directory, nothing is written)."""

    path: Path | None

    def append(self, day: date, event: IdentificationEvent) -> int | None:
        """Write ``event`` as a line of ``day``; its byte offset (None when not written)."""
        if self.path is None:
            return None
        line = json.dumps({"day": day.isoformat(), "event": event_to_plain(event)})
        try:
            with self.path.open("ab") as fh:
                offset = fh.tell()
                fh.write(line.encode() + b"\n")
        except OSError as exc:
            log.warning("cannot write the kiosk journal %s: %s", self.path, exc)
            return None
        return offset

    def read(self, offset: int, event_id: str) -> IdentificationEvent | None:
        """The event written at ``offset`` (None when the line is gone or is another event)."""
        if self.path is None:
            return None
        try:
            with self.path.open("rb") as fh:
                fh.seek(offset)
                event = _event(fh.readline(), None)
        except OSError as exc:
            log.warning("cannot read the kiosk journal %s: %s", self.path, exc)
            return None
        return event if event is not None and event.event_id == event_id else None

    def load(self, day: date, row: Callable[[IdentificationEvent], Row]) -> list[tuple[int, Row]]:
        """(offset, ``row(event)``) of ``day``'s events, oldest first; other days' lines are
        dropped from the file. Reads line by line: one event in memory at a time."""
        if self.path is None or not self.path.is_file():
            return []
        found: list[tuple[int, int, Row]] = []  # (offset now, offset once rewritten, row)
        fresh = self.path.with_name(self.path.name + ".new")
        old = new = 0
        try:
            with self.path.open("rb") as src, fresh.open("wb") as out:
                for line in src:
                    event = _event(line, day.isoformat()) if line.strip() else None
                    if event is not None:
                        found.append((old, new, row(event)))
                        kept = line if line.endswith(b"\n") else line + b"\n"  # the last one
                        out.write(kept)
                        new += len(kept)
                    old += len(line)
            os.replace(fresh, self.path)  # other days' lines go
        except OSError as exc:  # the file is as it was: its offsets hold
            log.warning("cannot rewrite the kiosk journal %s: %s", self.path, exc)
            fresh.unlink(missing_ok=True)
            return [(o, r) for o, _, r in found]
        return [(n, r) for _, n, r in found]


def _event(line: bytes, day: str | None) -> IdentificationEvent | None:
    """The event of one journal line (of ``day`` when given); None when unreadable."""
    try:
        entry = json.loads(line)
        if day is not None and entry.get("day") != day:
            return None
        return event_from_plain(entry["event"])
    except (ValueError, KeyError, TypeError, AttributeError, EdgeAgentError):
        return None
