"""Durable SQLite outbox: a message is committed here before it is published.

Without receipts a row is deleted on PUBACK. With receipts (``Outbox(receipts=True)``, the
station behind a site gateway) a row goes through states: ``stored`` -> ``sent`` (PUBACK) ->
deleted when the gateway's signed receipt says ``accepted``; ``rejected`` (receipt, with the
reason) stays until a person retries it; ``refused`` (the broker's PUBACK failure) stays with
the reason and is retried with back-off; a ``sent`` row without a receipt for
``receipt_timeout_s`` is due again.

The table is the source of truth (paho keeps unacknowledged messages only in memory). Rows are
sent in ``id`` order; ``key`` (the event id) lets receivers de-duplicate, and companion rows (an
evidence photo) share the key of their event. Reaching a limit refuses new rows and deletes
nothing; a corrupt file is moved aside and reported, never silently deleted.

Thread-safe: writes from any thread are group-committed (concurrent callers share one
transaction and one fsync); reads use a second connection. Only one process should add rows
(counters are kept in memory).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_agent.errors import ConfigError, OutboxCorruptError, OutboxError, OutboxFullError
from edge_agent.private_files import private_dir, private_file
from edge_agent.uplink.group_commit import GroupCommitter
from edge_agent.uplink.outbox_receipts import apply_outcomes, settle_late_companions
from edge_agent.uplink.outbox_space import (
    Reserve,
    free_page_bytes,
    reclaim,
    step_pages,
    tune,
    use_incremental_vacuum,
)
from edge_agent.uplink.settings import OutboxSettings

log = logging.getLogger("edge_agent.uplink.outbox")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    topic        TEXT    NOT NULL,
    payload      BLOB    NOT NULL,
    key          TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    created      REAL    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_attempt REAL,
    next_attempt REAL    NOT NULL DEFAULT 0,
    last_error   TEXT,
    UNIQUE (key, topic)
);
"""
# Columns added after the first release: ALTER TABLE on open, so an old file opens as it is.
_MIGRATIONS = (
    ("state", "TEXT NOT NULL DEFAULT 'stored'"),
    ("state_at", "REAL"),
    ("reason", "TEXT"),
)
STATES = ("stored", "sent", "accepted", "rejected", "refused")
_CORRUPT_CODES = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
_ROW_COLUMNS = "id, topic, payload, key, created, attempts, last_attempt, last_error, state, reason"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One message to store: where it goes, its bytes and its de-duplication key.

    ``companion``: a row that follows its key's first row (the gateway forwards a photo once
    its event is accepted, maybe in a later batch). Receipts name only the first row, so with
    receipts a companion added after a receipt settled its key takes that outcome: ``accepted``
    when no row of the key is left (deleted on its PUBACK), ``rejected`` with the reason when
    the key's rows are held rejected.
    """

    topic: str
    payload: bytes
    key: str
    companion: bool = False


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A stored, not yet acknowledged message."""

    id: int
    topic: str
    payload: bytes
    key: str
    created: float
    attempts: int
    last_attempt: float | None
    last_error: str | None
    state: str = "stored"
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """Depth, stored bytes and age of the oldest row."""

    path: str
    depth: int
    bytes: int
    oldest_age_s: float
    max_attempts: int


class Outbox:
    """The SQLite outbox (WAL, synchronous=FULL, one transaction per batch)."""

    def __init__(
        self,
        path: Path | str,
        settings: OutboxSettings | None = None,
        *,
        max_page_count: int | None = None,
        clock: Callable[[], float] = time.time,
        receipts: bool = False,
        receipt_timeout_s: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.settings = settings or OutboxSettings()
        #: rows stay after PUBACK (state ``sent``) until a receipt accepts their key
        self.receipts = receipts
        self.receipt_timeout_s = receipt_timeout_s
        self._clock = clock
        self._max_page_count = max_page_count
        #: set when the file at open was corrupt and has been moved aside
        self.corruption: OutboxCorruptError | None = None
        try:
            private_dir(self.path.parent)
            private_file(self.path)  # VINs and pack codes: owner-only, -wal/-shm follow
        except OSError as exc:  # data_dir is a file, or a folder we may not write
            raise OutboxError(
                f"cannot create the outbox {self.path}: {exc.strerror or exc}"
            ) from None
        self.reserve = Reserve(self.path, self.settings.reserve_bytes)
        self._next_reserve_try = 0.0
        wconn = self._open_checked()
        use_incremental_vacuum(wconn, self.path, self.settings.reserve_bytes)
        self.reserve.ensure()
        # reads use their own connection: in WAL mode they never wait for a commit's fsync
        self._rconn = self._connect()
        self._rlock = threading.Lock()
        row = wconn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox").fetchone()
        self._count: int = row[0]
        self._bytes: int = row[1]
        self._pending_count = 0
        self._pending_bytes = 0
        self._writer = GroupCommitter(
            wconn, lambda exc: self._translate(exc, "write"), after_group=self._end_group
        )

    def _end_group(self) -> None:
        self._pending_count = 0
        self._pending_bytes = 0

    # --- open / corruption -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        conn.execute("PRAGMA journal_mode=WAL").fetchone()
        conn.execute("PRAGMA synchronous=FULL")
        if self._max_page_count is not None:
            conn.execute(f"PRAGMA max_page_count={int(self._max_page_count)}").fetchone()
        if not conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
            # a new file: deleted rows can give their pages back (outbox_space.reclaim); set
            # only here, since the pragma writes to an existing (maybe corrupt) file
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        tune(conn, self.settings.reserve_bytes)
        conn.executescript(_SCHEMA)
        have = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
        for name, decl in _MIGRATIONS:
            if name not in have:
                try:
                    conn.execute(f"ALTER TABLE outbox ADD COLUMN {name} {decl}")
                except sqlite3.OperationalError as exc:  # the other connection just did it
                    if "duplicate column" not in str(exc):
                        raise
        return conn

    def _open_checked(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect()
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {result}")
            return conn
        except sqlite3.OperationalError as exc:
            if conn is not None:
                conn.close()
            if getattr(exc, "sqlite_errorname", "") in _CORRUPT_CODES:
                return self._recover(exc)
            raise OutboxError(f"cannot open outbox {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            return self._recover(exc)

    def _recover(self, exc: Exception) -> sqlite3.Connection:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        self.path.rename(target)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                side.rename(target.with_name(target.name + suffix))
        self.corruption = OutboxCorruptError(
            f"outbox {self.path} was unreadable ({exc}); moved aside to {target} "
            "and a new empty outbox was created",
            moved_to=str(target),
        )
        log.error("%s", self.corruption, extra={"moved_to": str(target)})
        return self._connect()

    # --- writes (group-committed: concurrent callers share one fsync) ------------------------

    def add(
        self, topic: str, payload: bytes, key: str, *, companions: Iterable[OutboxMessage] = ()
    ) -> list[int]:
        """Store one message (and companions with the same key) durably; returns row ids."""
        return self.add_many([OutboxMessage(topic, payload, key), *companions])

    def add_many(self, messages: Sequence[OutboxMessage]) -> list[int]:
        """Store messages, committed when this returns; OutboxFullError refuses all of them."""
        for m in messages:
            if not m.topic or not m.key or not isinstance(m.payload, bytes | bytearray):
                raise OutboxError(f"invalid outbox message for topic {m.topic!r} key {m.key!r}")
        size = sum(len(m.payload) for m in messages)

        def apply(conn: sqlite3.Connection) -> tuple[list[int], int, int]:
            self._check_limits(conn, len(messages), size)
            now = self._clock()
            if len(messages) > 1:
                fast = _insert_all(conn, messages, now)
                if fast is not None:
                    self._pending_count += len(messages)
                    self._pending_bytes += size
                    if self.receipts:
                        settle_late_companions(conn, _companions(messages, fast), now)
                    return fast, len(messages), size
            ids: list[int] = []
            new: list[int] = []
            added = added_bytes = 0
            for m in messages:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO outbox (topic, payload, key, size, created)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (m.topic, bytes(m.payload), m.key, len(m.payload), now),
                )
                if cur.rowcount == 1 and cur.lastrowid is not None:
                    ids.append(cur.lastrowid)
                    new.append(cur.lastrowid)
                    added += 1
                    added_bytes += len(m.payload)
                else:  # same key and topic already stored: keep the first
                    found = conn.execute(
                        "SELECT id FROM outbox WHERE key = ? AND topic = ?", (m.key, m.topic)
                    ).fetchone()
                    ids.append(found[0])
            # provisional totals so later writes in the same group see them
            self._pending_count += added
            self._pending_bytes += added_bytes
            if self.receipts:  # without receipts a PUBACK deletes every row
                fresh = set(new)
                inserted = [(m, i) for m, i in zip(messages, ids, strict=True) if i in fresh]
                settle_late_companions(
                    conn, _companions([m for m, _ in inserted], [i for _, i in inserted]), now
                )
            return ids, added, added_bytes

        ids, _, _ = self._writer.run(apply, on_commit=self._count_added)
        return ids

    def _count_added(self, result: tuple[list[int], int, int]) -> None:
        self._count += result[1]
        self._bytes += result[2]

    def _check_limits(self, conn: sqlite3.Connection, n: int, size: int) -> None:
        s = self.settings
        count = self._count + self._pending_count
        stored = self._bytes + self._pending_bytes
        if count + n > s.max_events:
            # the limit counts rows (an event and its evidence photo are two); say both
            events = conn.execute("SELECT COUNT(DISTINCT key) FROM outbox").fetchone()[0]
            raise OutboxFullError(
                f"outbox full: {count} rows stored ({events} events with their companion rows), "
                f"limit max_events={s.max_events} rows; new events are refused until stored "
                "ones are delivered (nothing was deleted)"
            )
        if stored + size > s.max_bytes:
            raise OutboxFullError(
                f"outbox full: {stored} bytes stored, limit max_bytes={s.max_bytes}; "
                "new events are refused until stored ones are delivered (nothing was deleted)"
            )
        oldest = _oldest_created(conn)
        if oldest is not None and self._clock() - oldest > s.max_age_days * 86400:
            raise OutboxFullError(
                f"outbox stalled: oldest undelivered event is older than max_age_days="
                f"{s.max_age_days}; new events are refused until the uplink delivers "
                "(nothing was deleted)"
            )
        if s.min_free_disk_bytes:
            free = shutil.disk_usage(self.path.parent).free
            if free - size < s.min_free_disk_bytes:
                raise OutboxFullError(
                    f"disk almost full: {free} bytes free at {self.path.parent}, "
                    f"min_free_disk_bytes={s.min_free_disk_bytes}; new events are refused"
                )
        if self.reserve.needed and not self._restore_reserve():
            raise OutboxFullError(
                f"disk full at {self.path.parent}: no room for the outbox reserve "
                f"(reserve_bytes={s.reserve_bytes}) that deletes need; new events are refused "
                "until delivered events are deleted or space is freed (nothing was deleted)"
            )

    def _restore_reserve(self) -> bool:
        now = time.monotonic()
        if now < self._next_reserve_try:
            return False
        if self.reserve.ensure():
            return True
        self._next_reserve_try = now + 1.0  # not on every refused event
        return False

    def settle(
        self,
        *,
        delivered: Iterable[int] = (),
        attempted: Iterable[int] = (),
        failed: Iterable[tuple[int, float, str]] = (),
    ) -> None:
        """Committed together: delete delivered rows, count attempts, back off failed rows."""
        done = list(delivered)
        gone = set(done)
        # no need to count a deleted row; with receipts a PUBACKed row stays: count it
        tried = list(attempted) if self.receipts else [i for i in attempted if i not in gone]
        bad = list(failed)
        if not (done or tried or bad):
            return
        now = self._clock()

        def apply(conn: sqlite3.Connection) -> tuple[list[int], int, int]:
            removed = removed_bytes = 0
            # with receipts a PUBACK only marks the row sent (deleted if already accepted)
            only = " AND state = 'accepted'" if self.receipts else ""
            for i in range(0, len(done), 500):
                chunk = done[i : i + 500]
                marks = ",".join("?" * len(chunk))
                row = conn.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox"  # noqa: S608
                    f" WHERE id IN ({marks}){only}",
                    chunk,
                ).fetchone()
                removed += row[0]
                removed_bytes += row[1]
                conn.execute(f"DELETE FROM outbox WHERE id IN ({marks}){only}", chunk)  # noqa: S608
                if self.receipts:
                    conn.execute(
                        "UPDATE outbox SET state = 'sent', state_at = ?, next_attempt = ?,"  # noqa: S608
                        f" last_error = NULL WHERE id IN ({marks}) AND state IN ('stored', 'refused')",
                        [now, now + self.receipt_timeout_s, *chunk],
                    )
            conn.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_attempt = ? WHERE id = ?",
                [(now, i) for i in tried],
            )
            conn.executemany(
                "UPDATE outbox SET next_attempt = ?, last_error = ?, state = 'refused',"
                " reason = ?, state_at = ? WHERE id = ? AND state != 'rejected'",
                [(when, err, err, now, i) for i, when, err in bad],
            )
            self._pending_count -= removed
            self._pending_bytes -= removed_bytes
            return [], -removed, -removed_bytes

        try:
            self._writer.run(apply, on_commit=self._count_added)
        except OutboxFullError:
            # a full disk must not keep delivered rows nor stall the bookkeeping: these
            # updates need a few pages, which the reserve gives
            if not (self._disk_nearly_full() and self.reserve.release()):
                raise
            self._writer.run(apply, on_commit=self._count_added)
        if self.reserve.needed or (done and self._space_to_give_back()):
            self._reclaim()

    def _space_to_give_back(self) -> bool:
        if self._disk_nearly_full():
            return True
        with self._rlock:
            held = free_page_bytes(self._rconn)
        return held > (self.settings.reserve_bytes or 8 * 1024**2)

    def _disk_nearly_full(self) -> bool:
        s = self.settings
        free = shutil.disk_usage(self.path.parent).free
        return free < s.min_free_disk_bytes + s.reserve_bytes

    def _reclaim(self) -> None:
        """Return the space of deleted rows to the filesystem, then restore the reserve."""
        # a (nearly) full disk gets all of it back now, otherwise a few steps per delete
        rounds = 1_000_000 if self.reserve.needed or self._disk_nearly_full() else 4
        for attempt in range(2):
            try:
                self._writer.exclusive(
                    lambda conn: reclaim(
                        conn, step=step_pages(conn, self.settings.reserve_bytes), rounds=rounds
                    )
                )
                break
            except sqlite3.Error as exc:
                full = getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL"
                if attempt == 0 and full and self.reserve.release():
                    continue  # the checkpoint needs room: the reserve is for this
                log.warning("outbox %s: could not give space back yet: %s", self.path, exc)
                break
        if self.reserve.needed and self.reserve.ensure():
            self._next_reserve_try = 0.0

    def retry_all(self) -> int:
        """Reset attempt counters and back-off so every row is sent at once; returns row count."""
        return self.retry()

    def retry(self, ids: Iterable[int] | None = None) -> int:
        """Send rows again at once (all rows, or those ``ids`` and their companions): rejected
        and refused rows go back to ``stored``; returns the number of rows reset."""
        wanted = None if ids is None else list(ids)

        def apply(conn: sqlite3.Connection) -> int:
            reset = (
                "UPDATE outbox SET attempts = 0, next_attempt = 0, last_error = NULL,"
                " reason = NULL, state = CASE WHEN state IN ('rejected', 'refused')"
                " THEN 'stored' ELSE state END, state_at = ?"
            )
            if wanted is None:
                return conn.execute(reset, (self._clock(),)).rowcount
            n = 0
            for row_id in wanted:
                n += conn.execute(
                    reset + " WHERE key = (SELECT key FROM outbox WHERE id = ?)",  # noqa: S608
                    (self._clock(), row_id),
                ).rowcount
            return n

        return self._writer.run(apply)

    def apply_receipt(self, outcomes: Sequence[tuple[str, str, str | None]]) -> int:
        """Apply receipt outcomes ``(key, status, reason)`` in one transaction: ``accepted``
        deletes the key's PUBACKed rows (the others go when PUBACKed), ``rejected`` keeps them
        with the reason; returns the number of rows whose state changed."""
        now = self._clock()

        def apply(conn: sqlite3.Connection) -> tuple[int, int, int]:
            changed, removed, removed_bytes = apply_outcomes(conn, outcomes, now)
            self._pending_count -= removed
            self._pending_bytes -= removed_bytes
            return changed, -removed, -removed_bytes

        changed, _, _ = self._writer.run(
            apply, on_commit=lambda r: self._count_added(([], r[1], r[2]))
        )
        return changed

    def replace_payload(self, row_id: int, payload: bytes) -> None:
        """Swap a row's bytes (an event re-signed under a new epoch) and make it due now."""

        def apply(conn: sqlite3.Connection) -> tuple[list[int], int, int]:
            old = conn.execute("SELECT size FROM outbox WHERE id = ?", (row_id,)).fetchone()
            if old is None:
                return [], 0, 0
            conn.execute(
                "UPDATE outbox SET payload = ?, size = ?, state = 'stored', reason = NULL,"
                " last_error = NULL, next_attempt = 0, attempts = 0, state_at = ? WHERE id = ?",
                (bytes(payload), len(payload), self._clock(), row_id),
            )
            return [], 0, len(payload) - int(old[0])

        self._writer.run(apply, on_commit=self._count_added)

    def state_counts(self) -> dict[str, int]:
        """Rows per state (every state named, zero when none)."""
        with self._rlock:
            rows = self._rconn.execute(
                "SELECT state, COUNT(*) FROM outbox GROUP BY state"
            ).fetchall()
        counts = dict.fromkeys(STATES, 0)
        counts.update({str(state): int(n) for state, n in rows})
        return counts

    def rows_for(self, key: str) -> list[OutboxRow]:
        """The stored rows of one key (event and companions)."""
        with self._rlock:
            rows = self._rconn.execute(
                f"SELECT {_ROW_COLUMNS} FROM outbox WHERE key = ? ORDER BY id",  # noqa: S608
                (key,),
            ).fetchall()
        return [OutboxRow(*r) for r in rows]

    @property
    def transactions(self) -> int:
        """Write transactions committed since open (group commit merges concurrent writes)."""
        return self._writer.transactions

    # --- reads ---------------------------------------------------------------------------------

    def fetch(
        self, after_id: int, limit: int, *, now: float | None = None, max_bytes: int | None = None
    ) -> list[OutboxRow]:
        """Rows due for sending with ``id > after_id``, oldest first; at most ``limit`` rows and
        (after the first) at most ``max_bytes`` of payload, so big photos stay bounded."""
        when = self._clock() if now is None else now
        budget = 2**62 if max_bytes is None else max_bytes
        with self._rlock:
            rows = self._rconn.execute(
                f"SELECT {_ROW_COLUMNS} FROM ("  # noqa: S608
                f" SELECT {_ROW_COLUMNS}, SUM(size) OVER (ORDER BY id) AS running, size"
                " FROM outbox WHERE id > ? AND next_attempt <= ? AND state != 'rejected'"
                " ORDER BY id LIMIT ?"
                ") WHERE running - size < ? ORDER BY id",
                (after_id, when, limit, budget),
            ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def rows(self, *, limit: int = 100, after_id: int = 0) -> list[OutboxRow]:
        """Stored rows in send order, whether due or backing off (for ``outbox list``)."""
        with self._rlock:
            rows = self._rconn.execute(
                f"SELECT {_ROW_COLUMNS} FROM outbox WHERE id > ? ORDER BY id LIMIT ?",  # noqa: S608
                (after_id, limit),
            ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def next_due(self) -> float | None:
        """Earliest ``next_attempt`` among backing-off rows (None when none wait)."""
        with self._rlock:
            row = self._rconn.execute(
                "SELECT MIN(next_attempt) FROM outbox WHERE next_attempt > 0"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    @property
    def depth(self) -> int:
        """Number of stored rows."""
        return self._count

    def status(self) -> OutboxStatus:
        """Depth, bytes, oldest age and the highest attempt count."""
        with self._rlock:
            oldest = _oldest_created(self._rconn)
            attempts = self._rconn.execute(
                "SELECT COALESCE(MAX(attempts), 0) FROM outbox"
            ).fetchone()
        return OutboxStatus(
            path=str(self.path),
            depth=self._count,
            bytes=self._bytes,
            oldest_age_s=0.0 if oldest is None else max(0.0, self._clock() - oldest),
            max_attempts=int(attempts[0]),
        )

    def close(self) -> None:
        """Checkpoint and close the database."""

        with self._rlock:
            self._rconn.close()
        try:
            self._writer.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("outbox checkpoint at close failed: %s", exc)
        self._writer.conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- helpers -------------------------------------------------------------------------------

    def _translate(self, exc: sqlite3.Error, action: str) -> OutboxError:
        """Map sqlite errors to the outbox's typed errors (a full disk refuses, keeps rows)."""
        name = getattr(exc, "sqlite_errorname", "")
        if name == "SQLITE_FULL":
            err: OutboxError = OutboxFullError(
                f"outbox {self.path}: database or disk is full, cannot {action}; "
                "new events are refused, stored events are intact"
            )
        else:
            err = OutboxError(f"outbox {self.path}: cannot {action}: {exc}")
        log.error("%s", err)
        return err


def _insert_all(
    conn: sqlite3.Connection, messages: Sequence[OutboxMessage], now: float
) -> list[int] | None:
    """Insert all rows with one executemany; their ids, or None (nothing inserted) when some
    (key, topic) was already stored and the caller must go row by row."""
    before = conn.total_changes
    conn.execute("SAVEPOINT add_all")
    conn.executemany(
        "INSERT OR IGNORE INTO outbox (topic, payload, key, size, created) VALUES (?, ?, ?, ?, ?)",
        [(m.topic, bytes(m.payload), m.key, len(m.payload), now) for m in messages],
    )
    n = len(messages)
    if conn.total_changes - before != n:
        conn.execute("ROLLBACK TO add_all")
        conn.execute("RELEASE add_all")
        return None
    conn.execute("RELEASE add_all")
    # AUTOINCREMENT with this connection the only writer inside the transaction: the rows just
    # inserted got consecutive ids ending at the table's sequence value.
    last = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()[0]
    return list(range(last - n + 1, last + 1))


def _companions(messages: Sequence[OutboxMessage], ids: Sequence[int]) -> list[tuple[int, str]]:
    """(row id, key) of the companion rows among messages inserted as ``ids``."""
    return [(i, m.key) for m, i in zip(messages, ids, strict=True) if m.companion]


def _oldest_created(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT created FROM outbox ORDER BY id LIMIT 1").fetchone()
    return None if row is None else float(row[0])


def inspect_outbox(path: Path) -> None:
    """Check ``path`` holds an outbox, read-only: never creates, changes or moves a file.

    ConfigError when there is none (a typo in ``--path`` must not create one), OutboxCorruptError
    when the file is not a readable outbox (the agent moves it aside at its next start).
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"no outbox at {path}", key_path="--path") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", key_path="--path") from None
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{path} is not a regular file", key_path="--path")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot open outbox {path} read-only: {exc}") from None
    try:
        conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
    except sqlite3.Error as exc:
        raise OutboxCorruptError(
            f"{path} is not a readable outbox ({exc}); nothing was changed "
            "(the agent moves it aside when it next starts)"
        ) from None
    finally:
        conn.close()


def outbox_path(settings: OutboxSettings, data_dir: Path) -> Path:
    """The configured outbox file, or ``<data_dir>/outbox.sqlite3``."""
    return (settings.path or data_dir / "outbox.sqlite3").expanduser()
