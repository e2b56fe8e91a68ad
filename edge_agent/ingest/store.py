"""The event store: idempotent, append-only inserts by event id, and the reads records need.

Rows are only ever inserted (triggers refuse UPDATE and DELETE, see ``migrations``). A batch of
verified events, their evidence links and the refusals is one transaction; an event id already
stored with the same COSE bytes is a ``duplicate`` (accepted again, stored once), with other
bytes a ``conflict`` (refused: the first signed record stands, untouched), also when the
first bytes came earlier in the same batch.

A batch is first written with bulk inserts (COPY on PostgreSQL) and no lookup: the usual batch
holds only new events. When a key is already stored the transaction rolls back and the batch
goes the checked way: look the ids up, insert the new ones with ON CONFLICT DO NOTHING, then
read back what is stored, since another worker may have committed an id in between.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from edge_agent.errors import DuplicateRowError
from edge_agent.ingest.db import Database, Tx

Outcome = Literal["stored", "duplicate", "conflict"]
COLUMNS = (
    "event_id",
    "site",
    "station",
    "kid",
    "boot_epoch",
    "seq",
    "event_utc",
    "received_utc",
    "pack_code",
    "vin",
    "disposition",
    "transport_class",
    "cose",
    "body_json",
    "corrects",
)
_INSERT_EVENT = (
    f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    "ON CONFLICT (event_id) DO NOTHING"
)
_EVIDENCE_COLUMNS = ("event_id", "sha256", "kind", "media_type", "size")
_INSERT_EVIDENCE = (
    f"INSERT INTO evidence ({', '.join(_EVIDENCE_COLUMNS)}) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (event_id, sha256) DO NOTHING"
)
_REFUSAL_COLUMNS = ("received_utc", "topic", "reason", "detail", "event_id", "payload_sha256")
_INSERT_REFUSAL = f"INSERT INTO refusals ({', '.join(_REFUSAL_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)"


@dataclass(frozen=True, slots=True)
class EvidenceLink:
    """An evidence item a signed event lists."""

    sha256: str
    kind: str
    media_type: str
    size: int


_COLUMN_VALUES = operator.attrgetter(*COLUMNS)  # a tuple of them, in one C call


@dataclass(frozen=True, slots=True)
class EventRow:
    """One verified event as stored: query columns, the exact COSE bytes and the body as JSON."""

    event_id: str
    site: str
    station: str
    kid: str
    boot_epoch: int
    seq: int
    event_utc: str
    received_utc: str
    pack_code: str | None
    vin: str | None
    disposition: str
    transport_class: str
    cose: bytes
    body_json: str
    corrects: str | None  # the event id this one corrects (from the verified body)
    evidence: tuple[EvidenceLink, ...] = ()

    def values(self) -> tuple[Any, ...]:
        """The column values in ``COLUMNS`` order."""
        return _COLUMN_VALUES(self)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class RefusalRow:
    """A message the ingest refused, kept with its reason."""

    received_utc: str
    topic: str
    reason: str
    detail: str
    event_id: str | None
    payload_sha256: str


class EventStore:
    """Inserts and reads on one ``Database``; migrates it to the latest schema on open."""

    def __init__(self, db: Database, *, migrate: bool = True) -> None:
        self.db = db
        if migrate:
            db.migrate()

    def store(
        self, events: Sequence[EventRow], refusals: Sequence[RefusalRow] = ()
    ) -> dict[str, Outcome]:
        """Store a batch in one transaction; the outcome per event id (its first row decides)."""
        outcomes: dict[str, Outcome] = {}
        for event, outcome in zip(events, self.store_each(events, refusals), strict=True):
            outcomes.setdefault(event.event_id, outcome)
        return outcomes

    def store_each(
        self, events: Sequence[EventRow], refusals: Sequence[RefusalRow] = ()
    ) -> list[Outcome]:
        """Store a batch in one transaction; the outcome of each row, in order.

        A row whose id is stored with the same bytes is a ``duplicate``; with other bytes a
        ``conflict``, also when the other bytes came earlier in this very batch.
        """
        first: dict[str, EventRow] = {}
        for event in events:
            first.setdefault(event.event_id, event)
        # in id order: two workers inserting overlapping ids lock them in the same order (no
        # deadlock on PostgreSQL's unique index; the later one waits, then decides)
        fresh = sorted(first.values(), key=lambda e: e.event_id)
        try:
            # The usual batch holds only new events: bulk inserts (COPY on PostgreSQL), no
            # lookup first. A key already stored aborts it; the checked path then decides.
            with self.db.transaction() as tx:
                tx.bulk_insert("events", COLUMNS, [e.values() for e in fresh])
                tx.bulk_insert("evidence", _EVIDENCE_COLUMNS, _links(fresh))
                tx.bulk_insert("refusals", _REFUSAL_COLUMNS, [_refusal(r) for r in refusals])
            decided: dict[str, Outcome] = dict.fromkeys(first, "stored")
            stored = {e.event_id: e.cose for e in fresh}
        except DuplicateRowError:
            decided, stored = self._store_checked(fresh, refusals)
        outcomes: list[Outcome] = []
        for event in events:
            if event is first[event.event_id] or event.cose == first[event.event_id].cose:
                outcomes.append(decided[event.event_id])
            else:  # the same id again in this batch with other bytes: the stored bytes decide
                same = stored.get(event.event_id) == event.cose
                outcomes.append("duplicate" if same else "conflict")
        return outcomes

    def _store_checked(
        self, events: Sequence[EventRow], refusals: Sequence[RefusalRow]
    ) -> tuple[dict[str, Outcome], dict[str, bytes]]:
        """Store the events not stored yet; the outcome per id and the bytes stored per id."""
        outcomes: dict[str, Outcome] = {}
        with self.db.transaction() as tx:
            known = _stored_cose(tx, [e.event_id for e in events])
            fresh: list[EventRow] = []
            for event in events:
                if event.event_id in known:
                    same = known[event.event_id] == event.cose
                    outcomes[event.event_id] = "duplicate" if same else "conflict"
                else:
                    outcomes[event.event_id] = "stored"
                    fresh.append(event)
            tx.executemany(_INSERT_EVENT, [e.values() for e in fresh])
            # Another worker may have committed one of these ids since the lookup (PostgreSQL,
            # read committed: ON CONFLICT DO NOTHING then skips ours): the stored bytes decide.
            # The same bytes stay "stored" (accepted, stored once either way).
            now_stored = _stored_cose(tx, [e.event_id for e in fresh])
            known.update(now_stored)
            for event in fresh:
                if now_stored.get(event.event_id) != event.cose:
                    outcomes[event.event_id] = "conflict"
            fresh = [e for e in fresh if outcomes[e.event_id] == "stored"]
            tx.executemany(_INSERT_EVIDENCE, _links(fresh))
            tx.executemany(_INSERT_REFUSAL, [_refusal(r) for r in refusals])
        return outcomes, known

    def evidence_state(
        self, event_id: str, sha256: str
    ) -> Literal["expected", "mismatch", "unknown"]:
        """Whether the stored event ``event_id`` lists ``sha256``, lists others, or is unknown."""
        rows = self.db.query(
            "SELECT sha256 FROM evidence WHERE event_id = ? UNION ALL "
            "SELECT '' FROM events WHERE event_id = ?",
            [event_id, event_id],
        )
        if not rows:
            return "unknown"
        return "expected" if any(r[0] == sha256 for r in rows) else "mismatch"

    def add_blobs(self, blobs: Sequence[tuple[str, int, str]]) -> None:
        """Record stored evidence files (sha256, size, stored_utc); idempotent."""
        with self.db.transaction() as tx:
            tx.executemany(
                "INSERT INTO evidence_blobs (sha256, size, stored_utc) VALUES (?, ?, ?) "
                "ON CONFLICT (sha256) DO NOTHING",
                blobs,
            )

    def count(self) -> int:
        """Stored events."""
        return int(self.db.query("SELECT COUNT(*) FROM events")[0][0])

    def refusals(self) -> list[RefusalRow]:
        """Every refusal, oldest first."""
        rows = self.db.query(
            "SELECT received_utc, topic, reason, detail, event_id, payload_sha256 "
            "FROM refusals ORDER BY id"
        )
        return [RefusalRow(*row) for row in rows]

    def select(
        self, where: str, params: Sequence[Any], *, limit: int | None = None, after: str = ""
    ) -> list[EventRow]:
        """Events matching a WHERE clause built by ``records`` (values only as parameters)."""
        # ``where`` holds fixed column names and "?" placeholders (records.where_clause)
        sql = f"SELECT {', '.join(COLUMNS)} FROM events WHERE ({where}) AND event_id > ?"
        sql += " ORDER BY event_id"
        args = [*params, after]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = self.db.query(sql, args)
        events = [_row(r) for r in rows]
        return self._with_evidence(events)

    def _with_evidence(self, events: list[EventRow]) -> list[EventRow]:
        if not events:
            return events
        links: dict[str, list[EvidenceLink]] = {}
        for marks, chunk in _chunks([e.event_id for e in events]):
            for event_id, sha, kind, media, size in self.db.query(
                "SELECT event_id, sha256, kind, media_type, size FROM evidence "
                f"WHERE event_id IN ({marks}) ORDER BY sha256",
                chunk,
            ):
                links.setdefault(event_id, []).append(EvidenceLink(sha, kind, media, int(size)))
        return [replace(e, evidence=tuple(links.get(e.event_id, ()))) for e in events]

    def corrections_of(self, event_ids: Sequence[str]) -> list[tuple[str, str]]:
        """(original, correction) event id pairs for every stored correction of ``event_ids``."""
        pairs: list[tuple[str, str]] = []
        for marks, chunk in _chunks(event_ids):
            rows = self.db.query(
                f"SELECT corrects, event_id FROM events WHERE corrects IN ({marks})", chunk
            )
            pairs += [(original, correction) for original, correction in rows]
        return pairs

    def corrected(self) -> set[str]:
        """Every event id that a stored event corrects."""
        rows = self.db.query("SELECT DISTINCT corrects FROM events WHERE corrects IS NOT NULL")
        return {original for (original,) in rows}

    def pages(
        self, where: str = "1 = 1", params: Sequence[Any] = (), size: int = 1000
    ) -> Iterator[EventRow]:
        """Every matching event in event-id order, read ``size`` at a time (keyset paging)."""
        after = ""
        while True:
            page = self.select(where, params, limit=size, after=after)
            yield from page
            if len(page) < size:
                return
            after = page[-1].event_id

    def blob_known(self, sha256: str) -> bool:
        """Whether an evidence file with this hash was stored."""
        return bool(self.db.query("SELECT 1 FROM evidence_blobs WHERE sha256 = ?", [sha256]))


def _stored_cose(tx: Tx, event_ids: Sequence[str]) -> dict[str, bytes]:
    """The stored COSE bytes of those of ``event_ids`` that are stored."""
    stored: dict[str, bytes] = {}
    for marks, chunk in _chunks(event_ids):
        for event_id, cose in tx.execute(
            f"SELECT event_id, cose FROM events WHERE event_id IN ({marks})", chunk
        ):
            stored[event_id] = bytes(cose)
    return stored


def _chunks(ids: Sequence[str], size: int = 500) -> Iterator[tuple[str, Sequence[str]]]:
    """``ids`` in chunks of at most ``size``, each with its ``?, ?, ...`` placeholders."""
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        yield ", ".join("?" * len(chunk)), chunk


def _links(events: Sequence[EventRow]) -> list[tuple[Any, ...]]:
    """Evidence rows of ``events`` in ``_EVIDENCE_COLUMNS`` order."""
    return [
        (e.event_id, x.sha256, x.kind, x.media_type, x.size) for e in events for x in e.evidence
    ]


def _refusal(r: RefusalRow) -> tuple[Any, ...]:
    """A refusal in ``_REFUSAL_COLUMNS`` order."""
    return (r.received_utc, r.topic, r.reason, r.detail, r.event_id, r.payload_sha256)


def _row(values: Sequence[Any]) -> EventRow:
    fields = list(values)
    fields[12] = bytes(fields[12])
    return EventRow(*fields)
