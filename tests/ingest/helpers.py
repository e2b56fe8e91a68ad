"""Signed events as the ingest sees them: a station, its trust store, rows from check_event."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.dataform import from_plain
from edge_agent.event_codec import uuid7
from edge_agent.gateway.site import SiteMessage
from edge_agent.ingest.check import check_event
from edge_agent.ingest.service import Ingest
from edge_agent.ingest.settings import IngestSettings
from edge_agent.ingest.store import EventRow
from edge_agent.model import IdentificationEvent, LabelCode, LabelReading
from edge_agent.signing.events import sign_event
from edge_agent.signing.keys import init_keys, load_signer
from edge_agent.signing.receipts import verify_receipt
from edge_agent.signing.trust import StaticKeys, TrustStore
from edge_agent.tokens.configured import close_signer
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


class Worker:
    """An ``Ingest`` without a broker: batches go in through ``process``, acks and receipts
    are recorded (and the receipts verified against the ingest's key)."""

    def __init__(self, tmp: Path, db_url: str, name: str, **overrides: object) -> None:
        key_dir = tmp / "ingest-key"
        if not key_dir.exists():
            init_keys(key_dir, "ed25519")
        settings = from_plain(
            IngestSettings,
            {
                "mqtt": {"port": 1, "client_id": name, "protocol": "5", "topic_prefix": PREFIX},
                "database": db_url,
                "data_dir": str(tmp / name),
                "trust_store": str(tmp / "trust.json"),
                "receipt_key_dir": str(key_dir),
                **overrides,
            },
        )
        self.ingest = Ingest(settings)
        self.keys = StaticKeys.of(load_signer(key_dir).public_key)
        self.acked: list[bytes] = []
        self.items: list[tuple[str, str, str]] = []  # (event_id, status, reason)
        self.ingest.subscriber.ack = lambda msgs: self.acked.extend(m.payload for m in msgs)  # type: ignore[method-assign]
        self.ingest.subscriber.publish = self._receipt  # type: ignore[method-assign]

    def _receipt(self, where: str, payload: bytes, *, qos: int = 0) -> None:
        assert qos == 1
        receipt = verify_receipt(payload, self.keys, topic=where)
        self.items += [(i.event_id, i.status, i.reason) for i in receipt.items]

    def process(self, where: str, payloads: list[bytes]) -> None:
        self.batch([(where, p) for p in payloads])

    def batch(self, messages: list[tuple[str, bytes]]) -> None:
        """One batch of (topic, payload) messages."""
        self.ingest.process([SiteMessage(t, p, i + 1, 1, 0) for i, (t, p) in enumerate(messages)])

    def close(self) -> None:
        self.ingest.store.db.close()
        self.ingest.evidence.close()
        if self.ingest._signer is not None:
            close_signer(self.ingest._signer)


def new_event(station: SimStation, **changes: object) -> IdentificationEvent:
    """The next event of ``station`` with ``changes`` (fields of the event) applied."""
    return replace(station.new_event(), **changes)  # type: ignore[arg-type]


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
