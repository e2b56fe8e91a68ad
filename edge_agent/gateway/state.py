"""Persistent admission state of the gateway: seen event ids, replay windows, expected evidence.

SQLite in WAL mode with ``synchronous=FULL``. The gateway commits the accepted events to its
outbox first and this state second, then acknowledges the site broker: a crash between the two
commits makes the station re-deliver, and the event is forwarded twice (at-least-once, the
backend de-duplicates by event_id) rather than lost.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.errors import GatewayError
from edge_agent.gateway.replay import ReplayWindow
from edge_agent.private_files import private_dir, private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_event (
    event_id TEXT PRIMARY KEY, kid TEXT NOT NULL, site TEXT NOT NULL, station TEXT NOT NULL,
    accepted_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replay_window (
    kid TEXT PRIMARY KEY, epoch INTEGER NOT NULL, top INTEGER NOT NULL, bitmap TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS expected_evidence (
    sha256 TEXT NOT NULL, event_id TEXT NOT NULL, site TEXT NOT NULL, station TEXT NOT NULL,
    forwarded INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (sha256, event_id)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class AcceptedRecord:
    """What the state remembers about one accepted event."""

    event_id: str
    kid: str
    site: str
    station: str
    evidence: tuple[str, ...]  # sha256 hex of each evidence item


@dataclass(frozen=True)
class ExpectedEvidence:
    """An evidence hash announced by an accepted event."""

    sha256: str
    event_id: str
    site: str
    station: str
    forwarded: bool


class GatewayState:
    """Seen event ids, replay windows and expected evidence in one SQLite file."""

    def __init__(self, path: Path) -> None:
        try:
            private_dir(path.parent)
            private_file(path)  # event ids, stations and sites: owner-only
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise GatewayError(f"cannot open gateway state {path}: {exc}") from None
        self.path = path

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def is_seen(self, event_id: str) -> bool:
        """Whether an event with this id was accepted before."""
        row = self._db.execute(
            "SELECT 1 FROM seen_event WHERE event_id = ?", (event_id,)
        ).fetchone()
        return row is not None

    def window(self, kid: str) -> ReplayWindow:
        """The stored replay window of a key (fresh when never seen)."""
        row = self._db.execute(
            "SELECT epoch, top, bitmap FROM replay_window WHERE kid = ?", (kid,)
        ).fetchone()
        if row is None:
            return ReplayWindow()
        return ReplayWindow(int(row[0]), int(row[1]), int(row[2], 16))

    def expected(self, sha256: str, event_id: str) -> ExpectedEvidence | None:
        """The expected evidence row for this hash and event, if an accepted event announced it."""
        row = self._db.execute(
            "SELECT site, station, forwarded FROM expected_evidence"
            " WHERE sha256 = ? AND event_id = ?",
            (sha256, event_id),
        ).fetchone()
        if row is None:
            return None
        return ExpectedEvidence(sha256, event_id, row[0], row[1], bool(row[2]))

    def commit(
        self,
        accepted: Iterable[AcceptedRecord],
        windows: dict[str, ReplayWindow],
        forwarded_evidence: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Record accepted events, new windows and forwarded evidence in one transaction."""
        now = time.time()
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                records = list(accepted)
                # One executemany per table and batch, not one statement per event.
                self._db.executemany(
                    "INSERT OR IGNORE INTO seen_event VALUES (?, ?, ?, ?, ?)",
                    [(r.event_id, r.kid, r.site, r.station, now) for r in records],
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO expected_evidence VALUES (?, ?, ?, ?, 0)",
                    [(h, r.event_id, r.site, r.station) for r in records for h in r.evidence],
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO replay_window VALUES (?, ?, ?, ?)",
                    [(kid, w.epoch, w.top, format(w.bitmap, "x")) for kid, w in windows.items()],
                )
                self._db.executemany(
                    "UPDATE expected_evidence SET forwarded = 1 WHERE sha256 = ? AND event_id = ?",
                    list(forwarded_evidence),
                )
        except sqlite3.Error as exc:
            raise GatewayError(f"cannot commit gateway state: {exc}") from None
