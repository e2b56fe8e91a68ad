"""What the bench page shows, kept up to date from the station's progress events.

``BenchBoard`` is a listener on ``StationAgent``'s progress: the station state (idle, reading,
result), each source's progress, the current pack and today's packs. Every change bumps
``version`` and wakes the page's server-sent-event streams (one queue each, never blocking).
Today's events are also appended to ``kiosk-today.jsonl`` in the data directory, so the list
survives a restart of ``run``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from edge_agent.errors import EdgeAgentError
from edge_agent.event_codec import event_from_plain, event_to_plain
from edge_agent.model import IdentificationEvent
from edge_agent.station.workflow import Progress

log = logging.getLogger(__name__)
SOURCES = ("bms", "label", "weight", "sensors")
MAX_TODAY = 2000
MAX_PHOTOS = 50
JOURNAL = "kiosk-today.jsonl"
StationState = Literal["idle", "reading", "result", "failed"]


@dataclass
class PackRecord:
    """One event of today as the page lists it."""

    event: IdentificationEvent
    corrected_by: str | None = None  # event_id of a later correction


@dataclass
class SourceProgress:
    """One source during the identification running now."""

    name: str
    status: str = "waiting"  # waiting, ok, partial, failed, absent
    reading: object = None


@dataclass
class BenchBoard:
    """The state behind the bench page."""

    data_dir: Path | None = None
    state: StationState = "idle"
    trigger: str = ""
    detail: str = ""
    sources: dict[str, SourceProgress] = field(default_factory=dict)
    current: IdentificationEvent | None = None
    today: list[PackRecord] = field(default_factory=list)  # newest first
    photos: dict[str, bytes] = field(default_factory=dict)  # event_id -> label photo
    version: int = 0
    _day: date = field(default_factory=lambda: datetime.now(UTC).astimezone().date())
    _streams: set[asyncio.Queue[int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.sources = {name: SourceProgress(name) for name in SOURCES}
        self._load()

    # --- progress from the station ---------------------------------------------------------

    def on_progress(self, progress: Progress) -> None:
        """The station's progress listener (runs in the event loop, never blocks long)."""
        if progress.step == "started":
            self.state, self.trigger, self.detail = "reading", progress.trigger, ""
            self.sources = {name: SourceProgress(name) for name in SOURCES}
        elif progress.step == "source":
            status = str(getattr(progress.reading, "status", "ok"))
            self.sources[progress.source] = SourceProgress(
                progress.source, status=status, reading=progress.reading
            )
        elif progress.step == "stored" and progress.result is not None:
            event = progress.result.event
            self.state, self.current = "result", event
            if progress.result.photo_jpeg:
                self.photos[event.event_id] = progress.result.photo_jpeg
                while len(self.photos) > MAX_PHOTOS:
                    self.photos.pop(next(iter(self.photos)))
            self.add(event)
        elif progress.step == "failed":
            self.state, self.detail = "failed", progress.detail
        self.changed()

    def add(self, event: IdentificationEvent) -> None:
        """Put an event at the top of today's list (and mark the one it corrects)."""
        self._roll_day()
        if event.corrects:
            original = self.find(event.corrects)
            if original is not None:
                original.corrected_by = event.event_id
        self.today.insert(0, PackRecord(event=event))
        del self.today[MAX_TODAY:]
        self._append(event)

    def find(self, event_id: str) -> PackRecord | None:
        """Today's record of ``event_id`` (None when not today's)."""
        return next((r for r in self.today if r.event.event_id == event_id), None)

    def search(self, text: str) -> list[PackRecord]:
        """Today's packs whose code, passport id or serial contains ``text`` (any case)."""
        needle = text.strip().upper()
        if not needle:
            return list(self.today)
        out = []
        for record in self.today:
            pack = record.event.pack
            hay = " ".join(x or "" for x in (pack.pack_code, pack.passport_id, pack.serial))
            if needle in hay.upper():
                out.append(record)
        return out

    def dismiss(self) -> None:
        """Back to idle (the technician took the pack away)."""
        self.state, self.current = "idle", None
        self.sources = {name: SourceProgress(name) for name in SOURCES}
        self.changed()

    # --- live updates ----------------------------------------------------------------------

    def changed(self) -> None:
        """Bump the version and wake every open page."""
        self.version += 1
        for queue in list(self._streams):
            if queue.empty():  # one pending wake-up is enough: the page re-reads everything
                queue.put_nowait(self.version)

    def subscribe(self) -> asyncio.Queue[int]:
        """A queue that receives the version after every change."""
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        self._streams.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[int]) -> None:
        """Stop waking ``queue``."""
        self._streams.discard(queue)

    # --- today's journal -------------------------------------------------------------------

    def _roll_day(self) -> None:
        today = datetime.now(UTC).astimezone().date()
        if today != self._day:
            self._day, self.today = today, []

    def _journal(self) -> Path | None:
        return None if self.data_dir is None else self.data_dir / JOURNAL

    def _append(self, event: IdentificationEvent) -> None:
        path = self._journal()
        if path is None:
            return
        line = json.dumps({"day": self._day.isoformat(), "event": event_to_plain(event)})
        try:
            with path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError as exc:  # the list is a convenience; the outbox holds the record
            log.warning("cannot write the kiosk journal %s: %s", path, exc)

    def _load(self) -> None:
        path = self._journal()
        if path is None or not path.is_file():
            return
        day = self._day.isoformat()
        kept: list[str] = []
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            log.warning("cannot read the kiosk journal %s: %s", path, exc)
            return
        for line in lines:
            try:
                entry = json.loads(line)
                if entry.get("day") != day:
                    continue
                event = event_from_plain(entry["event"])
            except (ValueError, KeyError, TypeError, EdgeAgentError):
                continue
            kept.append(line)
            self.today.insert(0, PackRecord(event=event))
        for record in self.today:
            if record.event.corrects:
                original = self.find(record.event.corrects)
                if original is not None:
                    original.corrected_by = record.event.event_id
        del self.today[MAX_TODAY:]
        try:  # yesterday's lines go
            path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
        except OSError as exc:
            log.warning("cannot rewrite the kiosk journal %s: %s", path, exc)
