"""Group commit for SQLite: writes from many threads share one transaction (one fsync).

With ``synchronous=FULL`` every commit costs an fsync (milliseconds on SD cards and busy VMs).
A caller hands in a write function and blocks until the transaction holding it has committed;
the first waiting caller becomes the leader and commits everything queued meanwhile. Each
write runs inside its own SAVEPOINT, so one refused write (a limit, a full disk) does not undo
the others.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Op(Generic[T]):
    apply: Callable[[sqlite3.Connection], T]
    commit: Callable[[T], None] | None
    result: Any = None
    error: BaseException | None = None
    done: bool = False
    applied: bool = field(default=False)


class GroupCommitter:
    """Serialises writes on ``conn`` and commits them in groups."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        translate: Callable[[sqlite3.Error], Exception],
        *,
        after_group: Callable[[], None] | None = None,
    ) -> None:
        self.conn = conn
        self._translate = translate
        self._after_group = after_group
        self._cond = threading.Condition()
        self._pending: list[_Op[Any]] = []
        self._leader = False
        self.transactions = 0  # commits made (for tests and benchmarks)

    def run(
        self,
        apply: Callable[[sqlite3.Connection], T],
        *,
        on_commit: Callable[[T], None] | None = None,
    ) -> T:
        """Run ``apply(conn)`` in a shared transaction; return once it is committed.

        ``on_commit(result)`` runs after the commit, in commit order, before any other group.
        Exceptions raised by ``apply`` (or a failed commit) are re-raised to this caller only.
        """
        op: _Op[T] = _Op(apply, on_commit)
        with self._cond:
            self._pending.append(op)
            while not op.done:
                if self._leader:
                    self._cond.wait()
                    continue
                self._leader = True
                batch, self._pending = self._pending, []
                self._cond.release()
                try:
                    self._run_group(batch)
                finally:
                    self._cond.acquire()
                    self._leader = False
                    self._cond.notify_all()
        if op.error is not None:
            raise op.error
        result: T = op.result
        return result

    def exclusive(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(conn)`` outside any transaction while no group runs (checkpoints and
        vacuum, which SQLite refuses inside a transaction); writers wait meanwhile."""
        with self._cond:
            while self._leader:
                self._cond.wait()
            self._leader = True
        try:
            return work(self.conn)
        finally:
            with self._cond:
                self._leader = False
                self._cond.notify_all()

    def _run_group(self, batch: list[_Op[Any]]) -> None:
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            err = self._translate(exc)
            for op in batch:
                op.error, op.done = err, True
            if self._after_group is not None:
                self._after_group()
            return
        applied: list[_Op[Any]] = []
        for op in batch:
            conn.execute("SAVEPOINT op")
            try:
                op.result = op.apply(conn)
                conn.execute("RELEASE op")
                op.applied = True
                applied.append(op)
            except BaseException as exc:
                op.error = self._translate(exc) if isinstance(exc, sqlite3.Error) else exc
                if conn.in_transaction:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                else:  # SQLite rolled the whole transaction back (e.g. disk full)
                    for earlier in applied:
                        earlier.error, earlier.applied = op.error, False
                    applied.clear()
                    conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("COMMIT")
            self.transactions += 1
        except sqlite3.Error as exc:
            err = self._translate(exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for op in applied:
                op.error, op.applied = err, False
            applied.clear()
        for op in batch:
            if op.applied and op.commit is not None:
                op.commit(op.result)
            op.done = True
        if self._after_group is not None:
            self._after_group()
