"""Signed events as the ingest sees them: a station, its trust store, rows from check_event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from edge_agent.ingest.check import check_event
from edge_agent.ingest.store import EventRow
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
    return sign_event(station.new_event(event_id=event_id), station.signer)
