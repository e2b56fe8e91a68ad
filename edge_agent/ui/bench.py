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
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from edge_agent.errors import EdgeAgentError
from edge_agent.event_codec import event_from_plain, event_to_plain
from edge_agent.model import IdentificationEvent
from edge_agent.private_files import PRIVATE_FILE, private_dir
from edge_agent.station.workflow import Progress

log = logging.getLogger(__name__)
SOURCES = ("bms", "label", "weight", "sensors")
MAX_TODAY = 2000
MAX_PHOTOS = 50
JOURNAL = "kiosk-today.jsonl"
PHOTOS = "kiosk-photos"
PHOTO_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jpg")
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
    version: int = 0
    _day: date = field(default_factory=lambda: datetime.now(UTC).astimezone().date())
    _streams: set[asyncio.Queue[int]] = field(default_factory=set)
    # event_id -> label photo, oldest first: None when its file is in kiosk-photos/, the bytes
    # when there is no data directory
    _photos: dict[str, bytes | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sources = {name: SourceProgress(name) for name in SOURCES}
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
