"""Dead letters: rejected station messages kept durably until a person fixes the cause.

One SQLite file (``<data_dir>/deadletters.sqlite3``, WAL, ``synchronous=FULL``) beside the
gateway state. The gateway writes a batch's rejections here before it acknowledges the batch
to the site broker, so a rejection for a fixable reason (unknown key, revoked key, wrong
binding) is never lost. The same message rejected again only raises ``count`` and
``last_seen``. Bounded by count, bytes and age: the oldest rows go first, counted and logged.

Replay is a flag in this file: ``edge-agent gateway rejected replay`` (another process) sets
``state = 'replay'``; the running gateway's worker picks such rows up, runs them through the
full admission checks and records the outcome (``accepted``, or ``held`` with the new reason).
A gateway that is not running does it when it starts.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge_agent.errors import GatewayError

log = logging.getLogger("edge_agent.gateway.deadletters")

# An event already accepted: nothing to fix, nothing to keep.
NOT_KEPT = frozenset({"duplicate"})

State = Literal["held", "replay", "accepted"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    site TEXT NOT NULL,
    station TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    count INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'held',
    replayed_at REAL,
    UNIQUE (topic, sha256)
);
CREATE INDEX IF NOT EXISTS dead_letter_state ON dead_letter (state);
"""


@dataclass(frozen=True)
class Rejection:
    """One rejected message as the pipeline hands it over."""

    topic: str
    payload: bytes
    reason: str
    detail: str = ""
    site: str = ""
    station: str = ""


@dataclass(frozen=True)
class DeadLetter:
    """A stored rejected message."""

    id: int
    topic: str
    payload: bytes
    reason: str
    detail: str
    site: str
    station: str
    first_seen: float
    last_seen: float
    count: int
    state: State
    replayed_at: float | None

    def summary(self) -> dict[str, object]:
        """JSON-ready fields without the payload."""
        return {
            "id": self.id,
            "topic": self.topic,
            "reason": self.reason,
            "detail": self.detail,
            "site": self.site,
            "station": self.station,
            "size": len(self.payload),
            "sha256": hashlib.sha256(self.payload).hexdigest(),
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "count": self.count,
            "state": self.state,
            "replayed_at": _iso(self.replayed_at) if self.replayed_at else None,
        }


@dataclass(frozen=True)
class Outcome:
    """What a replay decided for one dead letter: accepted, or rejected again."""

    id: int
    reason: str = ""  # empty: accepted
    detail: str = ""


_COLUMNS = (
    "id, topic, payload, reason, detail, site, station, first_seen, last_seen, count, state,"
    " replayed_at"
)


class DeadLetterStore:
    """The dead-letter table: add rejections, list/show, mark for replay, record outcomes."""

    def __init__(
        self,
        path: Path,
        *,
        max_count: int = 100_000,
        max_bytes: int = 256 * 1024**2,
        max_age_days: float = 30.0,
        create: bool = True,
    ) -> None:
        if not create and not path.exists():
            raise GatewayError(f"no dead letters at {path} (has the gateway run with this config?)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise GatewayError(f"cannot open dead letters {path}: {exc}") from None
        self.path = path
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.max_age_s = max_age_days * 86400.0
        self.dropped = 0  # rows evicted by the bounds since this object was made
        self.count, self.bytes = 0, 0
        self._refresh_totals()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def _refresh_totals(self) -> None:
        row = self._db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM dead_letter WHERE state != 'accepted'"
        ).fetchone()
        self.count, self.bytes = int(row[0]), int(row[1])

    # --- the gateway worker ------------------------------------------------------------------

    def add(self, rejections: Sequence[Rejection], *, now: float | None = None) -> int:
        """Store rejections (one transaction); returns how many old rows the bounds evicted."""
        kept = [r for r in rejections if r.reason not in NOT_KEPT]
        if not kept:
            return 0
        now = time.time() if now is None else now
        rows = [
            (
                r.topic,
                r.payload,
                hashlib.sha256(r.payload).hexdigest(),
                len(r.payload),
                r.reason,
                r.detail[:500],
                r.site,
                r.station,
                now,
                now,
            )
            for r in kept
        ]
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO dead_letter (topic, payload, sha256, size, reason, detail, site,"
                    " station, first_seen, last_seen, count) VALUES (?,?,?,?,?,?,?,?,?,?,1)"
                    " ON CONFLICT (topic, sha256) DO UPDATE SET count = count + 1,"
                    " last_seen = excluded.last_seen, reason = excluded.reason,"
                    " detail = excluded.detail, state = 'held'",
                    rows,
                )
                evicted = self._evict(now)
        except sqlite3.Error as exc:
            raise GatewayError(f"cannot store dead letters: {exc}") from None
        self._refresh_totals()
        if evicted:
            self.dropped += evicted
            log.warning(
                "dead letters full: dropped the %d oldest (limits %d rows, %d bytes, %.0f days)",
                evicted,
                self.max_count,
                self.max_bytes,
                self.max_age_s / 86400,
                extra={"dropped": evicted},
            )
        return evicted

    def _evict(self, now: float) -> int:
        cur = self._db.execute(
            "DELETE FROM dead_letter WHERE last_seen < ?", (now - self.max_age_s,)
        )
        evicted = cur.rowcount
        count, size = self._db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM dead_letter"
        ).fetchone()
        if count <= self.max_count and size <= self.max_bytes:
            return evicted
        # oldest first: walk the rows by id and cut where both bounds hold again
        drop_ids: list[int] = []
        # replayed (accepted) rows first, then the oldest
        for row_id, row_size in self._db.execute(
            "SELECT id, size FROM dead_letter ORDER BY state = 'accepted' DESC, id"
        ):
            if count <= self.max_count and size <= self.max_bytes:
                break
            drop_ids.append(row_id)
            count -= 1
            size -= row_size
        self._db.executemany("DELETE FROM dead_letter WHERE id = ?", [(i,) for i in drop_ids])
        return evicted + len(drop_ids)

    def due_for_replay(self, limit: int) -> list[DeadLetter]:
        """Rows marked for replay, oldest first (an event before its evidence)."""
        return self._select("WHERE state = 'replay' ORDER BY id LIMIT ?", (limit,))

    def record(self, outcomes: Iterable[Outcome], *, now: float | None = None) -> None:
        """Store replay outcomes: accepted rows are kept as such, the others held again."""
        now = time.time() if now is None else now
        accepted = [(now, o.id) for o in outcomes if not o.reason]
        again = [(o.reason, o.detail[:500], now, now, o.id) for o in outcomes if o.reason]
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "UPDATE dead_letter SET state = 'accepted', replayed_at = ? WHERE id = ?",
                    accepted,
                )
                self._db.executemany(
                    "UPDATE dead_letter SET state = 'held', reason = ?, detail = ?,"
                    " replayed_at = ?, last_seen = ?, count = count + 1 WHERE id = ?",
                    again,
                )
        except sqlite3.Error as exc:
            raise GatewayError(f"cannot record replay outcomes: {exc}") from None
        self._refresh_totals()

    # --- the operator's commands -------------------------------------------------------------

    def rows(
        self, *, reason: str | None = None, include_accepted: bool = False
    ) -> list[DeadLetter]:
        """Rows (payloads included), oldest first."""
        where: list[str] = []
        args: list[object] = []
        if not include_accepted:
            where.append("state != 'accepted'")
        if reason:
            where.append("reason = ?")
            args.append(reason)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        return self._select(f"{clause} ORDER BY id", tuple(args))

    def get(self, row_id: int) -> DeadLetter | None:
        """One row by id."""
        rows = self._select("WHERE id = ?", (row_id,))
        return rows[0] if rows else None

    def mark_for_replay(
        self, *, ids: Sequence[int] = (), reason: str | None = None, all_held: bool = False
    ) -> list[int]:
        """Flag held rows for the gateway to re-admit; returns the ids flagged."""
        args: tuple[object, ...]
        if ids:
            where, args = f"id IN ({','.join('?' * len(ids))})", tuple(ids)
        elif reason:
            where, args = "reason = ?", (reason,)
        elif all_held:
            where, args = "1", ()
        else:
            return []
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                rows = self._db.execute(
                    # only fixed clause texts and ? placeholders are put together here
                    f"SELECT id FROM dead_letter WHERE state = 'held' AND {where} ORDER BY id",  # noqa: S608
                    args,
                ).fetchall()
                marked = [int(r[0]) for r in rows]
                self._db.executemany(
                    "UPDATE dead_letter SET state = 'replay' WHERE id = ?", [(i,) for i in marked]
                )
        except sqlite3.Error as exc:
            raise GatewayError(f"cannot mark dead letters for replay: {exc}") from None
        return marked

    def _select(self, tail: str, args: tuple[object, ...]) -> list[DeadLetter]:
        query = f"SELECT {_COLUMNS} FROM dead_letter {tail}"  # noqa: S608 (fixed texts, ? args)
        rows = self._db.execute(query, args).fetchall()
        return [
            DeadLetter(
                id=int(r[0]),
                topic=r[1],
                payload=bytes(r[2]),
                reason=r[3],
                detail=r[4],
                site=r[5],
                station=r[6],
                first_seen=float(r[7]),
                last_seen=float(r[8]),
                count=int(r[9]),
                state=r[10],
                replayed_at=float(r[11]) if r[11] is not None else None,
            )
            for r in rows
        ]


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
