"""What the bench page shows, kept up to date from the station's progress events.

``BenchBoard`` is a listener on ``StationAgent``'s progress: the station state (idle, reading,
result), each source's progress, the current pack and today's packs. Every change bumps
``version`` and wakes the page's server-sent-event streams (one queue each, never blocking).
Today's events are also appended to ``kiosk-today.jsonl`` in the data directory, so the list
survives a restart of ``run``. The label photos of the last ``MAX_PHOTOS`` events are kept as
files in ``kiosk-photos/`` there (owner-only: they show pack codes), not in memory: 50 evidence
JPEGs are ~10 MB of a station's RSS.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from edge_agent.model import IdentificationEvent
from edge_agent.private_files import PRIVATE_FILE, private_dir
from edge_agent.station.workflow import Progress
from edge_agent.ui.journal import JOURNAL, Journal

log = logging.getLogger(__name__)
SOURCES = ("bms", "label", "weight", "sensors")
MAX_TODAY = 2000
MAX_PHOTOS = 50
PHOTOS = "kiosk-photos"
PHOTO_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jpg")
StationState = Literal["idle", "reading", "result", "failed"]


@dataclass(kw_only=True)
class PackRecord:
    """One event of today as the page lists it: a few fields; the event stays in the journal."""

    event_id: str
    utc: str
    pack_code: str  # or the passport id
    search_text: str  # pack code, passport id and serial, upper case
    transport_class: str
    packing: str
    disposition: str
    corrects: str
    corrected_by: str | None = None  # event_id of a later correction
    offset: int | None = None  # its line in the journal
    kept: IdentificationEvent | None = None  # the event itself when the journal has no line

    @classmethod
    def of(cls, event: IdentificationEvent) -> PackRecord:
        """The row of ``event``."""
        pack, triage = event.pack, event.triage
        codes = (pack.pack_code, pack.passport_id, pack.serial)
        return cls(
            event_id=event.event_id,
            utc=event.clock.utc,
            pack_code=pack.pack_code or pack.passport_id or "",
            search_text=" ".join(x or "" for x in codes).upper(),
            transport_class=triage.transport_class,
            packing=triage.packing_instruction,
            disposition=triage.disposition,
            corrects=event.corrects or "",
        )


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
    version: int = 0
    _day: date = field(default_factory=lambda: datetime.now(UTC).astimezone().date())
    _streams: set[asyncio.Queue[int]] = field(default_factory=set)
    # event_id -> label photo, oldest first: None when its file is in kiosk-photos/, the bytes
    # when there is no data directory
    _photos: dict[str, bytes | None] = field(default_factory=dict)
    _journal: Journal = field(init=False)

    def __post_init__(self) -> None:
        self.sources = {name: SourceProgress(name) for name in SOURCES}
        self._journal = Journal(None if self.data_dir is None else self.data_dir / JOURNAL)
        self._load()
        self._index_photos()

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
                self.keep_photo(event.event_id, progress.result.photo_jpeg)
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
        record = PackRecord.of(event)
        record.offset = self._journal.append(self._day, event)
        if record.offset is None:
            record.kept = event  # no journal line to read it back from
        self.today.insert(0, record)
        del self.today[MAX_TODAY:]

    def find(self, event_id: str) -> PackRecord | None:
        """Today's record of ``event_id`` (None when not today's)."""
        return next((r for r in self.today if r.event_id == event_id), None)

    def event(self, record: PackRecord) -> IdentificationEvent | None:
        """The whole event of ``record`` (None when its journal line is gone)."""
        if record.kept is not None:
            return record.kept
        if self.current is not None and self.current.event_id == record.event_id:
            return self.current
        if record.offset is None:
            return None
        return self._journal.read(record.offset, record.event_id)

    def search(self, text: str) -> list[PackRecord]:
        """Today's packs whose code, passport id or serial contains ``text`` (any case)."""
        needle = text.strip().upper()
        return [r for r in self.today if needle in r.search_text]

    def dismiss(self) -> None:
        """Back to idle (the technician took the pack away)."""
        self.state, self.current = "idle", None
        self.sources = {name: SourceProgress(name) for name in SOURCES}
        self.changed()

    # --- label photos ----------------------------------------------------------------------

    def photo(self, event_id: str) -> bytes | None:
        """The label photo of one of the last MAX_PHOTOS events (None when not kept)."""
        if event_id not in self._photos:
            return None  # never a path from outside: only ids the board kept are read
        data = self._photos[event_id]
        if data is not None:
            return data
        try:
            return self._photo_path(event_id).read_bytes()
        except OSError:
            return None

    def keep_photo(self, event_id: str, jpeg: bytes) -> None:
        """Keep ``jpeg`` as ``event_id``'s photo; the oldest beyond MAX_PHOTOS goes."""
        folder = self._photo_folder()
        if folder is None:
            self._photos[event_id] = jpeg
        else:
            try:
                private_dir(folder)
                fd = os.open(
                    self._photo_path(event_id),
                    os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                    PRIVATE_FILE,
                )
                with os.fdopen(fd, "wb") as fh:
                    fh.write(jpeg)
            except OSError as exc:  # a convenience: the outbox holds the evidence
                log.warning("cannot keep the label photo in %s: %s", folder, exc)
                return
            self._photos[event_id] = None
        while len(self._photos) > MAX_PHOTOS:
            self._drop_photo(next(iter(self._photos)))

    def _photo_folder(self) -> Path | None:
        return None if self.data_dir is None else self.data_dir / PHOTOS

    def _photo_path(self, event_id: str) -> Path:
        folder = self._photo_folder()
        assert folder is not None
        return folder / f"{event_id}.jpg"

    def _drop_photo(self, event_id: str) -> None:
        if self._photos.pop(event_id, b"") is None:
            try:
                self._photo_path(event_id).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot remove an old label photo: %s", exc)

    def _index_photos(self) -> None:
        """The photos a previous run kept (newest MAX_PHOTOS; older files are removed)."""
        folder = self._photo_folder()
        if folder is None or not folder.is_dir():
            return
        try:
            files = [p for p in folder.iterdir() if PHOTO_NAME.fullmatch(p.name)]
            files.sort(key=lambda p: p.stat().st_mtime)
        except OSError as exc:
            log.warning("cannot read the kiosk photos in %s: %s", folder, exc)
            return
        for path in files:
            self._photos[path.stem] = None
        while len(self._photos) > MAX_PHOTOS:
            self._drop_photo(next(iter(self._photos)))

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

    def _load(self) -> None:
        for offset, record in self._journal.load(self._day, PackRecord.of):
            record.offset = offset
            self.today.insert(0, record)
        for record in self.today:
            if record.corrects:
                original = self.find(record.corrects)
                if original is not None:
                    original.corrected_by = record.event_id
        del self.today[MAX_TODAY:]
