"""Signed events as the ingest sees them: a station, its trust store, rows from check_event."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.event_codec import uuid7
from edge_agent.ingest.check import check_event
from edge_agent.ingest.store import EventRow
from edge_agent.model import IdentificationEvent, LabelCode, LabelReading
from edge_agent.signing.events import sign_event
from edge_agent.signing.trust import TrustStore
from tests.support.gateway import SimStation, trust_stations

PREFIX = "cloud/v1"
NOW = datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC)


def station_and_trust(
    tmp: Path, name: str = "st01", site: str = "site-a"
) -> tuple[SimStation, TrustStore]:
    """A simulated station and a trust store that knows its key."""
    station = SimStation(site, name, tmp / "keys" / name)
    trust_stations(tmp / "trust.json", [station])
    return station, TrustStore.load(tmp / "trust.json")


def topic(station: SimStation) -> str:
    """The upstream event topic of ``station``."""
    return f"{PREFIX}/{station.site}/{station.station}/event"


def rows(station: SimStation, trust: TrustStore, n: int, photo: bool = False) -> list[EventRow]:
    """``n`` new signed events of ``station``, checked into store rows."""
    out = []
    for i in range(n):
        evidence = (f"photo {station.station} {station.seq} {i}".encode() * 20,) if photo else ()
        _, signed = station.next_event(evidence=evidence)
        row = check_event(topic(station), signed, trust, prefix=PREFIX, max_bytes=65536, now=NOW)
        assert isinstance(row, EventRow), row
        out.append(row)
    return out


def twin(station: SimStation, event_id: str) -> bytes:
    """A validly signed, different event of ``station`` under ``event_id`` (a reused id)."""
    return sign_event(new_event(station, event_id=event_id), station.signer)


def new_event(station: SimStation, **changes: object) -> IdentificationEvent:
    """The next event of ``station`` with ``changes`` (fields of the event) applied."""
    event, _ = station.next_event()
    return replace(event, **changes)  # type: ignore[arg-type]


def signed_row(station: SimStation, trust: TrustStore, event: IdentificationEvent) -> EventRow:
    """``event`` signed by ``station`` and checked into a store row."""
    signed = sign_event(event, station.signer)
    row = check_event(topic(station), signed, trust, prefix=PREFIX, max_bytes=65536, now=NOW)
    assert isinstance(row, EventRow), row
    return row


def correction_chain(station: SimStation, trust: TrustStore) -> list[EventRow]:
    """Rows A; B corrects A; C corrects B; D corrects A again (the latest); and a decoy that
    corrects nothing but whose body text holds A's correction mark ``"corrects": "A"`` (as a
    key in a label code's parsed fields, and quoted inside strings). Ids in that order, one
    millisecond apart."""
    start = int(NOW.timestamp() * 1000)
    a, b, c, d, decoy = (uuid7(start + i) for i in range(5))
    mark = f'"corrects": "{a}"'
    code = LabelCode(symbology="QRCode", text=mark, kind="text", fields={"corrects": a})
    label = LabelReading(status="ok", codes=(code,))
    plain = new_event(station, event_id=decoy, observations=(mark,))
    events = [
        new_event(station, event_id=a),
        new_event(station, event_id=b, corrects=a),
        new_event(station, event_id=c, corrects=b),
        new_event(station, event_id=d, corrects=a),
        replace(plain, readings=replace(plain.readings, label=label)),
    ]
    return [signed_row(station, trust, e) for e in events]


def links_from_bodies(rows: list[EventRow]) -> dict[str, str]:
    """The latest correction of each corrected id, read from the bodies' top-level
    ``corrects`` (what the LIKE scan over body_json answered before the column)."""
    latest: dict[str, str] = {}
    for row in rows:
        original = json.loads(row.body_json).get("corrects")
        if isinstance(original, str):
            latest[original] = max(row.event_id, latest.get(original, row.event_id))
    return latest
