"""Records: find stored events, export the intake ledger, re-verify everything stored.

Every query value is checked against its shape (``RecordsQueryError`` names the field) and
then passed to the database only as a bound parameter; the SQL text holds column names from
this module alone.
"""

from __future__ import annotations

import csv
import io
import json
import re
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from edge_agent.errors import RecordsQueryError, VerificationError
from edge_agent.event_codec import decode_event
from edge_agent.ingest.blobs import BlobStore
from edge_agent.ingest.check import body_json
from edge_agent.ingest.store import EventRow, EventStore
from edge_agent.model import Disposition
from edge_agent.signing.cose import EVENT_POLICY, verify_sign1
from edge_agent.signing.trust import TrustStore, parse_utc

_SHAPES = {
    "pack_code": re.compile(r"[0-9A-Za-z]{1,64}"),
    "vin": re.compile(r"[0-9A-Za-z]{1,32}"),
    "event_id": re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    "site": re.compile(r"[A-Za-z0-9_-]{1,64}"),
    "station": re.compile(r"[A-Za-z0-9_-]{1,64}"),
}
DISPOSITIONS = typing.get_args(Disposition)
MAX_LIMIT = 100_000


@dataclass(frozen=True, kw_only=True)
class Query:
    """What ``records find`` and ``records export`` filter on (all optional, ANDed)."""

    pack_code: str | None = None
    vin: str | None = None
    event_id: str | None = None
    site: str | None = None
    station: str | None = None
    disposition: str | None = None
    since: str | None = None  # ISO date or UTC time, inclusive (event clock)
    until: str | None = None  # ISO date (whole day) or UTC time, exclusive for a time


def utc_bound(text: str, *, what: str, end: bool) -> str:
    """``YYYY-MM-DD`` or ISO 8601 UTC as the stored ``...Z`` text; a date ``end`` is the next day."""
    if len(text) > 40:
        raise RecordsQueryError(f"{what}: too long")
    try:
        if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            return f"{day.isoformat()}T00:00:00Z"
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RecordsQueryError(f"{what}: not an ISO 8601 date or time: {text!r}") from None
    if moment.tzinfo is None:
        raise RecordsQueryError(f"{what}: give a UTC offset or Z: {text!r}")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def where_clause(query: Query) -> tuple[str, list[Any]]:
    """The WHERE text (fixed column names) and its bound parameters."""
    parts: list[str] = []
    params: list[Any] = []
    for name, rx in _SHAPES.items():
        value = getattr(query, name)
        if value is None:
            continue
        if not isinstance(value, str) or not rx.fullmatch(value):
            raise RecordsQueryError(f"{name}: not a valid value: {str(value)[:80]!r}")
        parts.append(f"{name} = ?")
        params.append(value)
    if query.disposition is not None:
        if query.disposition not in DISPOSITIONS:
            raise RecordsQueryError(
                f"disposition: one of {', '.join(DISPOSITIONS)}, not {query.disposition[:80]!r}"
            )
        parts.append("disposition = ?")
        params.append(query.disposition)
    if query.since is not None:
        parts.append("event_utc >= ?")
        params.append(utc_bound(query.since, what="since", end=False))
    if query.until is not None:
        parts.append("event_utc < ?")
        params.append(utc_bound(query.until, what="until", end=True))
    return (" AND ".join(parts) or "1 = 1"), params


def find(
    store: EventStore, query: Query, *, limit: int = 100, after: str | None = None
) -> list[EventRow]:
    """Stored events matching ``query`` in event-id (time) order, at most ``limit``.

    ``after`` (an event id, the last one of the previous page) pages on by keyset.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise RecordsQueryError(f"limit: 1..{MAX_LIMIT}, not {limit}")
    if after is not None and not (isinstance(after, str) and _SHAPES["event_id"].fullmatch(after)):
        raise RecordsQueryError(f"cursor: not an event id: {str(after)[:80]!r}")
    where, params = where_clause(query)
    return store.select(where, params, limit=limit, after=after or "")


def summary(row: EventRow) -> dict[str, Any]:
    """One line of ``records find``."""
    return {
        "event_id": row.event_id,
        "event_utc": row.event_utc,
        "site": row.site,
        "station": row.station,
        "pack_code": row.pack_code,
        "vin": row.vin,
        "disposition": row.disposition,
        "transport_class": row.transport_class,
        "evidence": [e.sha256 for e in row.evidence],
        "corrects": row.corrects,
        "corrected_by": None,  # with_links fills it in
    }


# --- corrections: a later event names the one it corrects; both stay stored ------------------
# ``events.corrects`` holds the link (indexed, filled from the verified body; migration 4)


def corrected_by(store: EventStore, event_ids: Iterable[str]) -> dict[str, str]:
    """For each of ``event_ids`` that was corrected, the id of its latest correction."""
    ids = list(event_ids)
    for event_id in ids:
        if not _SHAPES["event_id"].fullmatch(event_id):
            raise RecordsQueryError(f"event_id: not a valid value: {event_id[:80]!r}")
    latest: dict[str, str] = {}
    for original, correction in store.corrections_of(ids):
        latest[original] = max(correction, latest.get(original, correction))
    return latest


def superseded(store: EventStore) -> set[str]:
    """Every stored event id that a later stored event corrects (exports leave these out)."""
    return store.corrected()


def with_links(store: EventStore, rows: list[EventRow]) -> list[dict[str, Any]]:
    """``records find`` lines of ``rows``: ``corrects`` and ``corrected_by`` filled in."""
    links = corrected_by(store, [r.event_id for r in rows])
    return [{**summary(row), "corrected_by": links.get(row.event_id)} for row in rows]


def find_with_links(store: EventStore, query: Query, *, limit: int = 100) -> list[dict[str, Any]]:
    """``records find`` lines: each event with ``corrects`` and ``corrected_by`` filled in."""
    return with_links(store, find(store, query, limit=limit))


# --- the intake ledger --------------------------------------------------------------------

# (column, confidence per docs/ingest.md): the recycler intake field list is not published;
# these mirror the dismantler's records and the event's intake block.
LEDGER_COLUMNS = (
    "intake_date",
    "event_utc",
    "event_id",
    "site",
    "station",
    "enterprise_id",
    "pack_code",
    "code_kind",
    "vin",
    "manufacturer",
    "battery_type",
    "rated_energy_kwh",
    "mass_kg",
    "consignor_name",
    "consignor_uscc",
    "un_number",
    "special_provision",
    "transport_class",
    "packing_instruction",
    "disposition",
    "eu_status",
    "eu_category",
    "soh_percent",
    "soh_definition",
    "technician",
    "observations",
    "evidence_sha256",
    "corrects",
)


def _get(plain: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(plain, dict):
            return None
        plain = plain.get(key)
    return plain


def ledger_row(row: EventRow) -> dict[str, Any]:
    """The ledger fields of one stored event (from its verified body)."""
    body = json.loads(row.body_json)
    intake = body.get("intake") or {}
    soh = _get(body, "readings", "bms", "state", "soh", "value")
    return {
        "intake_date": row.event_utc[:10],
        "event_utc": row.event_utc,
        "event_id": row.event_id,
        "site": row.site,
        "station": row.station,
        "enterprise_id": intake.get("enterprise_id"),
        "pack_code": row.pack_code,
        "code_kind": _get(body, "pack", "code_kind"),
        "vin": row.vin,
        "manufacturer": _get(body, "pack", "manufacturer"),
        "battery_type": _get(body, "pack", "battery_type"),
        "rated_energy_kwh": _get(body, "pack", "rated_energy_kwh"),
        "mass_kg": _get(body, "readings", "weight", "mass_kg"),
        "consignor_name": _get(intake, "consignor", "name"),
        "consignor_uscc": _get(intake, "consignor", "uscc"),
        "un_number": intake.get("un_number"),
        "special_provision": intake.get("special_provision"),
        "transport_class": row.transport_class,
        "packing_instruction": _get(body, "triage", "packing_instruction"),
        "disposition": row.disposition,
        "eu_status": intake.get("eu_status"),
        "eu_category": intake.get("eu_category"),
        "soh_percent": soh if isinstance(soh, int | float) else None,
        "soh_definition": intake.get("soh_definition"),
        "technician": intake.get("technician"),
        "observations": ";".join(body.get("observations") or ()),
        "evidence_sha256": ";".join(e.sha256 for e in row.evidence),
        "corrects": row.corrects,
    }


def export(rows: Iterable[EventRow], out: TextIO, *, fmt: str) -> int:
    """Write the ledger as CSV (header + one line per event) or JSON lines; rows written."""
    if fmt not in ("csv", "json"):
        raise RecordsQueryError(f"format: csv or json, not {fmt[:20]!r}")
    count = 0
    writer = csv.DictWriter(out, fieldnames=LEDGER_COLUMNS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    for row in rows:
        record = ledger_row(row)
        if writer is not None:
            writer.writerow({k: csv_cell(v) for k, v in record.items()})
        else:
            out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count


def csv_cell(value: Any) -> Any:
    # a cell starting with = + - @ runs as a formula in spreadsheets (CSV injection)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def export_rows(store: EventStore, query: Query) -> Iterator[EventRow]:
    """Every current event matching ``query`` (corrected originals left out), page by page."""
    where, params = where_clause(query)
    replaced = superseded(store)
    return (row for row in store.pages(where, params) if row.event_id not in replaced)


# --- audit ----------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    """What ``records verify`` found."""

    events: int = 0
    evidence_ok: int = 0
    evidence_missing: list[str] = field(default_factory=list)  # "event_id sha256"
    problems: list[str] = field(default_factory=list)  # "event_id: reason"

    @property
    def ok(self) -> bool:
        """No signature, body or evidence hash mismatch."""
        return not self.problems


def verify_all(store: EventStore, trust: TrustStore, evidence: BlobStore) -> VerifyReport:
    """Re-check every stored signature (key valid when received), body and evidence hash."""
    report = VerifyReport()
    for row in store.pages():
        report.events += 1
        problem = verify_row(row, trust)
        if problem:
            report.problems.append(f"{row.event_id}: {problem}")
        for link in row.evidence:
            state = evidence.check(link.sha256)
            if state == "ok":
                report.evidence_ok += 1
            elif state == "missing":
                report.evidence_missing.append(f"{row.event_id} {link.sha256}")
            else:
                report.problems.append(f"{row.event_id}: evidence {link.sha256} hash mismatch")
    return report


def verify_row(row: EventRow, trust: TrustStore) -> str:
    """What is wrong with one stored event against its signature, or "" when nothing."""
    try:
        verified = verify_sign1(
            row.cose, trust, policy=EVENT_POLICY, at=parse_utc(row.received_utc)
        )
        event = decode_event(verified.payload)
    except (VerificationError, ValueError) as exc:
        return f"signature or body: {exc}"
    if event.event_id != row.event_id or event.kid != verified.kid.hex():
        return "stored columns do not match the signed body"
    if body_json(event) != row.body_json:
        return "stored body differs from the signed body"
    signed = {(e.sha256, e.kind, e.size) for e in event.evidence}
    if {(e.sha256, e.kind, e.size) for e in row.evidence} != signed:
        return "evidence links differ from the signed event"
    columns = (
        row.pack_code,
        row.vin,
        row.disposition,
        row.transport_class,
        row.event_utc,
        row.corrects,
    )
    if columns != (
        event.pack.pack_code,
        event.pack.vin,
        event.triage.disposition,
        event.triage.transport_class,
        event.clock.utc,
        event.corrects,
    ):
        return "stored query columns differ from the signed body"
    return ""


def dump_csv(rows: Iterable[EventRow]) -> str:
    """The CSV ledger as text (tests, small exports)."""
    buf = io.StringIO()
    export(rows, buf, fmt="csv")
    return buf.getvalue()
