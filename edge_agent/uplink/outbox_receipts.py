"""Receipt states of outbox rows: the SQL that a receipt and a late companion row run.

Called inside the outbox's write transaction (``Outbox.apply_receipt``, ``Outbox.add_many``),
so a receipt and a companion row added at the same moment never miss each other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

Outcome = tuple[str, str, str | None]  # key, "accepted" | "rejected", reason


def apply_outcomes(
    conn: sqlite3.Connection, outcomes: Sequence[Outcome], now: float
) -> tuple[int, int, int]:
    """``accepted`` deletes the key's PUBACKed rows (the others are marked and go when
    PUBACKed), ``rejected`` keeps them with the reason; (rows changed, rows deleted, bytes
    deleted)."""
    changed = removed = removed_bytes = 0
    for key, status, reason in outcomes:
        if status == "accepted":
            row = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox"
                " WHERE key = ? AND state IN ('sent', 'rejected')",
                (key,),
            ).fetchone()
            removed += row[0]
            removed_bytes += row[1]
            conn.execute(
                "DELETE FROM outbox WHERE key = ? AND state IN ('sent', 'rejected')", (key,)
            )
            changed += row[0]
            changed += conn.execute(
                "UPDATE outbox SET state = 'accepted', state_at = ? WHERE key = ?", (now, key)
            ).rowcount
        else:
            changed += conn.execute(
                "UPDATE outbox SET state = 'rejected', reason = ?, state_at = ?,"
                " last_error = ? WHERE key = ? AND state != 'accepted'",
                (reason or "rejected", now, reason, key),
            ).rowcount
    return changed, removed, removed_bytes


def settle_late_companions(
    conn: sqlite3.Connection, late: Sequence[tuple[int, str]], now: float
) -> None:
    """Companion rows ``(row id, key)`` just inserted take the outcome a receipt already gave
    their key: ``accepted`` when no other row of the key is left (the receipt deleted them),
    ``rejected`` with the reason when all of them are held rejected; else they stay stored."""
    skip = {row_id for row_id, _ in late}
    for row_id, key in late:
        others = [
            (state, reason)
            for other, state, reason in conn.execute(
                "SELECT id, state, reason FROM outbox WHERE key = ?", (key,)
            )
            if other not in skip
        ]
        if not others:
            conn.execute(
                "UPDATE outbox SET state = 'accepted', state_at = ? WHERE id = ?", (now, row_id)
            )
        elif all(state == "rejected" for state, _ in others):
            reason = others[0][1] or "rejected"
            conn.execute(
                "UPDATE outbox SET state = 'rejected', reason = ?, last_error = ?, state_at = ?"
                " WHERE id = ?",
                (reason, reason, now, row_id),
            )
