"""Disk space of the outbox: a reserve file so that a full filesystem never blocks deletes.

On a 100 % full filesystem SQLite cannot delete rows (WAL mode appends every change to the
``-wal`` file) nor checkpoint (copying the WAL into the database may grow the file). The
outbox therefore keeps ``<outbox>.reserve``, a file of ``reserve_bytes`` it allocated while
there was room:

- an update of stored rows (deleting delivered ones, counting attempts) or a checkpoint that
  fails with SQLITE_FULL releases the reserve and tries again: it needs a few pages only;
- then ``reclaim`` gives the space of the deleted rows back to the filesystem (incremental
  vacuum, the database is created with ``auto_vacuum=INCREMENTAL``) and truncates the WAL, a
  few steps after each delete, also when a delivered backlog left more than ``reserve_bytes``
  of free pages in the file;
- the reserve is allocated again as soon as the filesystem has room for it, and until then new
  events are refused (``OutboxFullError``), so they cannot eat the space that deletes need.

The WAL is checkpointed every ``reserve_bytes / 2`` of pages, so a checkpoint never needs more
room than the reserve gives.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import sqlite3
from pathlib import Path

log = logging.getLogger("edge_agent.uplink.outbox")

_CHUNK = 64 * 1024


def reserve_path(outbox: Path) -> Path:
    """``<outbox>.reserve`` beside the database."""
    return outbox.with_name(outbox.name + ".reserve")


def tune(conn: sqlite3.Connection, reserve_bytes: int) -> None:
    """Checkpoint and cap the WAL so that a checkpoint fits into half the reserve."""
    # Debian's and others' SQLite builds default to secure_delete=ON, which zeroes every freed
    # page through the WAL: deleting 1 MB of delivered rows then needs 1 MB of free disk.
    # FAST only zeroes what costs no extra page writes (outbox rows are signed, not secret).
    conn.execute("PRAGMA secure_delete=FAST").fetchone()
    if reserve_bytes <= 0:
        return
    page = int(conn.execute("PRAGMA page_size").fetchone()[0])
    pages = max(16, min(1000, reserve_bytes // 2 // page))
    conn.execute(f"PRAGMA wal_autocheckpoint={pages}").fetchone()
    conn.execute(f"PRAGMA journal_size_limit={pages * page}").fetchone()


def use_incremental_vacuum(conn: sqlite3.Connection, path: Path, reserve_bytes: int) -> None:
    """New databases: ``auto_vacuum=INCREMENTAL``; an older one is converted when it is empty
    or the disk has room for a copy (VACUUM)."""
    if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2:
        return
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
    if not tables:
        return  # takes effect when the first table is created
    size = path.stat().st_size + _side_size(path)
    if shutil.disk_usage(path.parent).free < 2 * size + reserve_bytes:
        log.info("outbox %s: not enough room to enable incremental vacuum yet", path)
        return
    try:
        conn.execute("VACUUM")
    except sqlite3.Error as exc:
        log.warning("outbox %s: could not enable incremental vacuum: %s", path, exc)


def _side_size(path: Path) -> int:
    total = 0
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(OSError):
            total += path.with_name(path.name + suffix).stat().st_size
    return total


class Reserve:
    """The reserve file: allocated while there is room, released when deletes need it."""

    def __init__(self, outbox: Path, size: int) -> None:
        self.path = reserve_path(outbox)
        self.size = size
        self.released = 0  # times released since open (for tests and metrics)

    @property
    def needed(self) -> bool:
        """True when a reserve is configured and not in place (new events must wait)."""
        return self.size > 0 and not self._complete()

    def _complete(self) -> bool:
        try:
            return self.path.stat().st_size >= self.size
        except OSError:
            return False

    def ensure(self) -> bool:
        """Allocate the reserve if it is missing; False when the filesystem has no room."""
        if self.size <= 0 or self._complete():
            return True
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("outbox reserve %s cannot be created: %s", self.path, exc)
            return False
        try:
            _allocate(fd, self.size)
            os.fsync(fd)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                log.warning("outbox reserve %s cannot be allocated: %s", self.path, exc)
            os.close(fd)
            fd = -1
            with contextlib.suppress(OSError):
                self.path.unlink()
            return False
        finally:
            if fd >= 0:
                os.close(fd)
        log.info("outbox reserve of %d bytes in place at %s", self.size, self.path)
        return True

    def release(self) -> bool:
        """Delete the reserve file so that SQLite can use its space; False if there was none."""
        if self.size <= 0:
            return False
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.error("outbox reserve %s cannot be released: %s", self.path, exc)
            return False
        self.released += 1
        log.warning(
            "disk full: released the outbox reserve (%d bytes at %s) to delete delivered rows "
            "and checkpoint",
            self.size,
            self.path,
        )
        return True


def _allocate(fd: int, size: int) -> None:
    # posix_fallocate reserves blocks on ext4, xfs, btrfs and tmpfs; elsewhere write real bytes
    # (random, so a compressing filesystem cannot shrink them to nothing)
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    os.lseek(fd, 0, os.SEEK_SET)
    left = size
    while left > 0:
        left -= os.write(fd, os.urandom(min(_CHUNK, left)))


def step_pages(conn: sqlite3.Connection, reserve_bytes: int) -> int:
    """Pages one reclaim round may move: what half the reserve holds (1024 without one)."""
    page = int(conn.execute("PRAGMA page_size").fetchone()[0])
    return max(16, reserve_bytes // 2 // page) if reserve_bytes > 0 else 1024


def free_page_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of pages inside the database that deleted rows left free."""
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    return free * int(conn.execute("PRAGMA page_size").fetchone()[0])


def reclaim(conn: sqlite3.Connection, *, step: int, rounds: int = 4) -> None:
    """Give up to ``rounds * step`` pages of deleted rows back to the filesystem and truncate
    the WAL; each round needs at most ``step`` pages of room (autocommit connection)."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    for _ in range(rounds):
        if int(conn.execute("PRAGMA freelist_count").fetchone()[0]) == 0:
            return
        before = int(conn.execute("PRAGMA page_count").fetchone()[0])
        # executescript steps the pragma to the end; execute() frees a single page (the pragma
        # yields one column-less row per page, which sqlite3 treats as a statement without rows)
        conn.executescript(f"PRAGMA incremental_vacuum({int(step)});")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if int(conn.execute("PRAGMA page_count").fetchone()[0]) >= before:
            return  # nothing moved (not an incremental-vacuum database)
