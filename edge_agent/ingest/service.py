"""``edge-agent ingest``: upstream events into the store, evidence into the blob store, receipts.

One worker loop per process: take a batch from the subscription (MQTT 5 persistent session,
QoS 1, manual acks, optionally a ``$share/<group>/`` shared subscription), verify each event,
store the batch in one transaction, write matching evidence, and only then acknowledge the
broker and send the receipts. A crash before the acks makes the broker re-deliver; the store
de-duplicates by event id, so nothing is lost and nothing is stored twice. A photo the evidence
store cannot take (disk, bucket, credentials, endpoint) stays unacknowledged and is tried again
later, and its event gets no receipt meanwhile (the gateway keeps its copy and re-sends).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from edge_agent.errors import IngestError
from edge_agent.gateway.routing import SiteTopic, parse_site_topic
from edge_agent.gateway.site import SiteMessage, SiteSubscriber
from edge_agent.ingest.acks import Answer, publish_receipts
from edge_agent.ingest.blobs import BlobStore, open_blob_store
from edge_agent.ingest.check import Refused, check_event, refusal_row
from edge_agent.ingest.db import Database
from edge_agent.ingest.rotations import take_statement
from edge_agent.ingest.settings import IngestSettings
from edge_agent.ingest.store import EventRow, EventStore, RefusalRow
from edge_agent.signing.signer import Signer
from edge_agent.signing.trust import TrustStore, iso_utc
from edge_agent.tokens.configured import close_signer, open_signer

log = logging.getLogger("edge_agent.ingest")


def ingest_subscriptions(settings: IngestSettings) -> list[str]:
    """The topic filters: events, evidence and key rotation statements under the prefix,
    shared when a group is set."""
    prefix = settings.mqtt.topic_prefix
    share = f"$share/{settings.share_group}/" if settings.share_group else ""
    kinds = ("event", "evidence/+", "key")
    return [f"{share}{prefix}/+/+/{kind}" for kind in kinds]


# a photo the evidence store could not take is tried again after this, doubling up to the max
STORE_RETRY_S = 1.0
STORE_RETRY_MAX_S = 30.0


@dataclass
class _Held:
    message: SiteMessage
    deadline: float  # refused as evidence_unmatched after this (inf: waits for the store)
    retry_at: float = 0.0  # not looked at again before this
    retry_s: float = 0.0  # the wait after the next store failure
    unstored: bool = False  # matched, but the evidence store could not take it


class Ingest:
    """The worker: subscription in, database and evidence store out, receipts back."""

    def __init__(
        self,
        settings: IngestSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self._clock = clock
        self.store = EventStore(Database(settings.database_url))
        self.evidence: BlobStore = open_blob_store(settings)
        self._trust_mtime = -1.0
        self._trust = self._load_trust()
        self._signer: Signer | None = None
        if settings.receipts and (
            settings.receipt_key_dir is not None or settings.receipt_pkcs11 is not None
        ):
            self._signer = open_signer(
                key_dir=settings.receipt_key_dir, pkcs11=settings.receipt_pkcs11
            )
        self.subscriber = SiteSubscriber(
            settings.mqtt,
            session_expiry_s=settings.session_expiry_s,
            config_key="ingest.mqtt",
            topics=ingest_subscriptions(settings),
        )
        self._held: list[_Held] = []
        self._deadlines: dict[int, _Held] = {}  # id(message) -> its hold, for due evidence
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stored = 0
        self.duplicates = 0
        self.refused = 0
        self.conflicts = 0  # refused: an event id stored with other bytes
        self.evidence_failures = 0  # photos the evidence store could not take (tried again)
        self.last_turn = time.monotonic()

    def _load_trust(self) -> TrustStore:
        path = self.settings.trust_store
        self._trust_mtime = _mtime(path)
        return TrustStore.load(path)

    def start(self) -> None:
        """Connect and start the worker thread."""
        self.subscriber.start()
        self._thread = threading.Thread(target=self._run, name="edge-agent-ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the worker, then disconnect (unacknowledged messages stay with the broker)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.subscriber.stop()
        self.store.db.close()
        self.evidence.close()
        if self._signer is not None:
            close_signer(self._signer)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.last_turn = time.monotonic()
            batch = self._take()
            if batch:
                try:
                    self.process(batch)
                except Exception:
                    # nothing acknowledged: the broker re-delivers after a reconnect
                    log.exception("ingest batch failed; messages stay unacknowledged")
                    self._stop.wait(1.0)

    def _take(self) -> list[SiteMessage]:
        batch: list[SiteMessage] = []
        with suppress(queue.Empty):
            batch.append(self.subscriber.inbox.get(timeout=0.2))
        while len(batch) < self.settings.batch_max:
            try:
                batch.append(self.subscriber.inbox.get_nowait())
            except queue.Empty:
                break
        # held evidence gets another look every turn (after a store failure: once it is due)
        now = time.monotonic()
        due = [h for h in self._held if h.retry_at <= now]
        self._held = [h for h in self._held if h.retry_at > now]
        batch.extend(h.message for h in due)
        self._deadlines = {id(h.message): h for h in due}
        return batch

    def process(self, messages: list[SiteMessage]) -> None:
        """Decide, store, acknowledge and answer one batch."""
        if _mtime(self.settings.trust_store) != self._trust_mtime:
            self._trust = self._load_trust()
        now = self._clock()
        received = iso_utc(now)
        prefix = self.settings.mqtt.topic_prefix
        events: list[tuple[SiteMessage, EventRow]] = []
        refusals: list[tuple[SiteMessage, Refused, SiteTopic | None]] = []
        evidence: list[SiteMessage] = []
        receipts: list[Answer] = []
        key_refusals: list[RefusalRow] = []
        key_done: list[SiteMessage] = []
        for msg in messages:
            where = parse_site_topic(prefix, msg.topic)
            if where is not None and where.kind == "evidence":
                evidence.append(msg)
                continue
            if where is not None and where.kind == "key":
                # in order: the new key's events later in this batch verify with it
                taken = take_statement(
                    msg.payload,
                    where,
                    self._trust,
                    path=self.settings.trust_store,
                    max_bytes=self.settings.max_message_bytes,
                    now=now,
                )
                self._trust = taken.trust
                self._trust_mtime = _mtime(self.settings.trust_store)
                receipts.extend([taken.answer] if taken.answer else [])
                if taken.refused is not None:
                    self.refused += 1
                    key_refusals.append(refusal_row(msg.topic, msg.payload, taken.refused, now))
                key_done.append(msg)
                continue
            decided = check_event(
                msg.topic,
                msg.payload,
                self._trust,
                prefix=prefix,
                max_bytes=self.settings.max_message_bytes,
                now=now,
                where=where,
                received_utc=received,
            )
            if isinstance(decided, Refused):
                refusals.append((msg, decided, where))
            else:
                events.append((msg, decided))
        outcomes = self.store.store_each(
            [row for _, row in events],
            [refusal_row(m.topic, m.payload, r, now) for m, r, _ in refusals] + key_refusals,
        )
        done: list[SiteMessage] = key_done
        conflicts: list[RefusalRow] = []
        for (msg, row), outcome in zip(events, outcomes, strict=True):
            if outcome == "conflict":
                # another event under a stored id: refused, the stored record stays untouched
                self.refused += 1
                self.conflicts += 1
                refused = Refused("conflict", "event id stored with other bytes", row.event_id)
                conflicts.append(refusal_row(msg.topic, msg.payload, refused, now))
                receipts.append(Answer(row.site, row.station, row.event_id, "rejected", "conflict"))
                log.warning(
                    "event refused: id %s stored with other bytes",
                    row.event_id,
                    extra={"reason": "conflict", "event_id": row.event_id, "topic": msg.topic},
                )
            else:
                if outcome == "stored":
                    self.stored += 1
                else:
                    self.duplicates += 1
                receipts.append(Answer(row.site, row.station, row.event_id, "accepted", outcome))
            done.append(msg)
        if conflicts:  # kept before the ack: a crash re-delivers and decides the same again
            self.store.store([], conflicts)
        for msg, refused, where in refusals:
            self.refused += 1
            log.warning(
                "event refused",
                extra={"reason": refused.reason, "detail": refused.detail, "topic": msg.topic},
            )
            if where is not None and refused.event_id:
                receipts.append(
                    Answer(where.site, where.station, refused.event_id, "rejected", refused.reason)
                )
            done.append(msg)
        done.extend(self._evidence(evidence, now))
        self.subscriber.ack(done)
        # an event whose photo is not stored yet gets no receipt: the gateway keeps its copy
        waiting = {h.message.topic.rsplit("/", 1)[-1] for h in self._held if h.unstored}
        self._send([r for r in receipts if r.event_id not in waiting])

    def _evidence(self, messages: list[SiteMessage], now: datetime) -> list[SiteMessage]:
        """Store evidence listed by a stored event; hold early arrivals; refuse the rest."""
        done: list[SiteMessage] = []
        blobs: list[tuple[str, int, str]] = []
        refusals: list[RefusalRow] = []
        holds = self._deadlines
        prefix = self.settings.mqtt.topic_prefix
        store_down = False
        for msg in messages:
            where = parse_site_topic(prefix, msg.topic)
            assert where is not None
            sha = hashlib.sha256(msg.payload).hexdigest()
            if len(msg.payload) > self.settings.max_evidence_bytes:
                state = "oversized"
            else:
                state = self.store.evidence_state(where.event_id, sha)
            if state == "expected":
                held = holds.get(id(msg))
                if not store_down and self._put(msg, held):
                    blobs.append((sha, len(msg.payload), iso_utc(now)))
                    done.append(msg)
                    continue
                store_down = True  # the rest of the batch waits too, without another try
                wait = held.retry_s if held is not None and held.unstored else STORE_RETRY_S
                retry = min(wait * 2, STORE_RETRY_MAX_S)
                self._held.append(_Held(msg, float("inf"), time.monotonic() + wait, retry, True))
                continue
            if state == "unknown":
                held = holds.get(id(msg))
                deadline = (
                    held.deadline
                    if held is not None and not held.unstored
                    else time.monotonic() + self.settings.evidence_wait_s
                )
                if time.monotonic() < deadline:
                    self._held.append(_Held(msg, deadline))
                    continue
                state = "evidence_unmatched"
            reason = "evidence_mismatch" if state == "mismatch" else state
            refusals.append(
                refusal_row(msg.topic, msg.payload, Refused(reason, sha, where.event_id), now)
            )
            log.warning("evidence refused", extra={"reason": reason, "topic": msg.topic})
            done.append(msg)
        if blobs or refusals:
            self.store.add_blobs(blobs)
            if refusals:
                self.store.store([], refusals)
        return done

    def _put(self, msg: SiteMessage, held: _Held | None) -> bool:
        """Store one photo; False (logged, counted) when the evidence store cannot take it."""
        try:
            self.evidence.put(msg.payload)
        except IngestError as exc:
            self.evidence_failures += 1
            log.warning(
                "evidence not stored, kept unacknowledged: %s",
                exc,
                extra={"topic": msg.topic, "store": self.evidence.describe()},
            )
            return False
        if held is not None and held.unstored:
            log.info("evidence stored after a retry", extra={"topic": msg.topic})
        return True

    def _send(self, receipts: list[Answer]) -> None:
        if self._signer is None or not receipts:
            return
        publish_receipts(
            self.subscriber.publish,
            self._signer,
            prefix=self.settings.mqtt.topic_prefix,
            answers=receipts,
        )


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_service(settings: IngestSettings) -> int:
    """Run one ingest worker until SIGTERM/SIGINT; the exit status."""
    stop = threading.Event()
    with _stop_on_signals(stop):
        ingest = Ingest(settings)
        ingest.start()
        log.info("ingest running", extra={"database": ingest.store.db.dialect})
        try:
            while not stop.wait(1.0):
                pass
        finally:
            log.info(
                "ingest stopping",
                extra={
                    "stored": ingest.stored,
                    "duplicates": ingest.duplicates,
                    "refused": ingest.refused,
                    "conflicts": ingest.conflicts,
                },
            )
            ingest.stop()
    return 0
