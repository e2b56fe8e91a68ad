"""The settler: commits the drainer's outbox updates on its own thread, one group at a time.

The drainer records rows PUBACKed (to delete), rows sent (attempt counts) and rows refused
(back-off) here; a group goes to the settler thread once ``batch`` acks piled up or the oldest
update waited ``flush_s``, so publishing goes on during the fsync. PUBACKed rows stay in
``acked_rows`` (never re-sent) until their delete is committed. A failed commit (a full disk)
puts the group back in front and tries again 0.5 s later.

Everything except the thread's own loop runs on the drainer thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from edge_agent.errors import OutboxError
from edge_agent.uplink.outbox import Outbox

log = logging.getLogger("edge_agent.uplink.publisher")

Failure = tuple[int, float, str]  # row id, wall-clock time it is due again, reason
Group = tuple[list[int], list[int], list[Failure]]  # delivered, attempted, failed


class Settler:
    """Collects outbox updates and commits them in groups on the ``outbox-settler`` thread."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        batch: int,
        flush_s: float,
        on_done: Callable[[], None],
        on_committed: Callable[[], None],
    ) -> None:
        """``on_done`` (settler thread) must make the drainer call ``settled``;
        ``on_committed`` (drainer thread) runs after each committed group."""
        self._outbox = outbox
        self._batch = batch
        self._flush_s = flush_s
        self._on_done = on_done
        self._on_committed = on_committed
        self.acked: list[int] = []  # PUBACKed, delete not yet committed
        self.acked_rows: set[int] = set()
        self.attempted: list[int] = []
        self.failed: list[Failure] = []
        self._first_unflushed = 0.0
        self._queue: queue.SimpleQueue[Group | None] = queue.SimpleQueue()
        self.settling: Group | None = None
        self._error: OutboxError | None = None
        self._done = threading.Event()
        self._done.set()
        self._retry_at = 0.0
        self._thread: threading.Thread | None = None

    # --- drainer thread ------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """Updates recorded and not yet handed to the settler thread."""
        return bool(self.acked or self.attempted or self.failed)

    def _mark(self) -> None:
        if not self.pending:
            self._first_unflushed = time.monotonic()

    def delivered(self, row_id: int) -> None:
        """The row was PUBACKed: delete it (and never send it again meanwhile)."""
        self._mark()
        self.acked.append(row_id)
        self.acked_rows.add(row_id)

    def sent(self, row_id: int) -> None:
        """The row was published once more (its attempt count goes up)."""
        self._mark()
        self.attempted.append(row_id)

    def refused(self, row_id: int, due: float, reason: str) -> None:
        """The row was refused: keep it, due again at wall-clock ``due``, with its reason."""
        self._mark()
        self.failed.append((row_id, due, reason))

    def due_in(self) -> float | None:
        """Seconds until the next group may go (None: nothing to do before the next update)."""
        if self.settling is None and self.pending:
            start = max(self._first_unflushed + self._flush_s, self._retry_at)
            return max(0.0, start - time.monotonic())
        return None

    def flush(self) -> None:
        """Hand the recorded updates to the settler thread if a group is due."""
        if self.settling is not None:
            return  # one settle at a time; acks keep accumulating into the next group
        if not self.pending:
            return
        if time.monotonic() < self._retry_at:
            return
        if time.monotonic() - self._first_unflushed < self._flush_s and (
            len(self.acked) < self._batch
        ):
            return
        self.settling = (self.acked, self.attempted, self.failed)
        self.acked, self.attempted, self.failed = [], [], []
        self._done.clear()
        self._queue.put(self.settling)

    def settled(self) -> None:
        """The settler thread finished a group: forget it, or put it back if it failed."""
        work, self.settling = self.settling, None
        if work is None:
            return
        if self._error is not None:
            log.warning("outbox update failed, will retry: %s", self._error)
            self._mark()
            self.acked = work[0] + self.acked
            self.attempted = work[1] + self.attempted
            self.failed = work[2] + self.failed
            self._retry_at = time.monotonic() + 0.5  # do not spin on a full disk
            return
        self.acked_rows.difference_update(work[0])
        self._on_committed()

    def finish(self) -> None:
        """On drainer exit: let a running group finish, then commit the rest on this thread."""
        if not self._done.wait(10.0):
            return
        self.settled()
        if self.pending:
            try:
                self._outbox.settle(
                    delivered=self.acked, attempted=self.attempted, failed=self.failed
                )
            except OutboxError as exc:
                log.error("final outbox flush failed: %s", exc)

    # --- settler thread ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the settler thread."""
        self._thread = threading.Thread(
            target=self._run, name="edge-agent-outbox-settler", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """End the settler thread after the group it has."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            work = self._queue.get()
            if work is None:
                return
            try:
                self._outbox.settle(delivered=work[0], attempted=work[1], failed=work[2])
                self._error = None
            except OutboxError as exc:  # e.g. disk full: keep the rows, try again later
                self._error = exc
            except Exception as exc:
                log.exception("outbox settle failed")
                self._error = OutboxError(str(exc))
            self._done.set()
            self._on_done()
