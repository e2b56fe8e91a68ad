"""The site gateway pipeline: site subscription -> admission -> outbox -> upstream.

One worker thread takes messages in batches: decide each, commit the accepted ones to the
outbox (one transaction), commit the admission state, then acknowledge the whole batch to the
site broker. Nothing is acknowledged before it is either stored or deliberately rejected.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from pathlib import Path

from edge_agent.errors import EdgeAgentError
from edge_agent.gateway.admission import Admission, Forward, Hold, Reject
from edge_agent.gateway.deadletters import DeadLetterStore, Outcome, Rejection
from edge_agent.gateway.metrics import GatewayMetrics
from edge_agent.gateway.receipts import ReceiptSender
from edge_agent.gateway.settings import GatewaySettings
from edge_agent.gateway.site import SiteMessage, SiteSubscriber
from edge_agent.gateway.state import GatewayState
from edge_agent.gateway.upstream import UPSTREAM_KEY, open_upstream, upstream_trust
from edge_agent.signing.trust import TrustStore
from edge_agent.tokens.configured import close_signer, open_signer
from edge_agent.uplink.mqtt_client import check_tls_files
from edge_agent.uplink.outbox import OutboxMessage

log = logging.getLogger("edge_agent.gateway")
# config sections named in configuration errors
SITE_KEY = "gateway.site_mqtt"


class Gateway:
    """Wires the site subscriber, the admission checks, the outbox and the upstream forwarder."""

    def __init__(self, settings: GatewaySettings, *, metrics: GatewayMetrics | None = None) -> None:
        # bad TLS paths fail here, before any database is opened
        check_tls_files(settings.site_mqtt.tls, config_key=SITE_KEY)
        check_tls_files(settings.upstream_mqtt.tls, config_key=UPSTREAM_KEY)
        # a missing or unsafe receipt key fails here too (KeyFileError names the file, a
        # TokenError the token and key label); a token key is never replaced by a key file
        signer = None
        if settings.receipt_key_dir is not None or settings.receipt_pkcs11 is not None:
            signer = open_signer(key_dir=settings.receipt_key_dir, pkcs11=settings.receipt_pkcs11)
        self._signer = signer
        self.settings = settings
        # a missing or unreadable trust store refuses the start (ConfigError naming the file)
        self._trust_stamp = _stamp(settings.trust_store)
        self.trust = TrustStore.load(settings.trust_store)
        # upstream receipts required without the ingest's keys fail here too (ConfigError)
        ingest_keys = upstream_trust(settings)
        self.metrics = metrics or GatewayMetrics()
        self.metrics.trust_store_ok.set(1)
        self.state = GatewayState(settings.state_path)
        forwarder = open_upstream(settings, self.metrics, trust=ingest_keys)
        self.outbox = forwarder.outbox
        self.upstream = forwarder.publisher
        #: the ingest's receipts (None: rows leave the outbox on the upstream PUBACK)
        self.upstream_receipts = forwarder.receipts
        limits = settings.dead_letters
        self.dead_letters = DeadLetterStore(
            settings.dead_letters_path,
            max_count=limits.max_count,
            max_bytes=limits.max_bytes,
            max_age_days=limits.max_age_days,
        )
        self.metrics.dead_letters.set_function(lambda: float(self.dead_letters.count))
        self.metrics.dead_letter_bytes.set_function(lambda: float(self.dead_letters.bytes))
        self._next_replay = 0.0
        self.admission = Admission(settings=settings, state=self.state, trust=self.trust)
        self.site = SiteSubscriber(
            settings.site_mqtt, session_expiry_s=settings.session_expiry_s, config_key=SITE_KEY
        )
        self.receipts: ReceiptSender | None = None
        if signer is not None:
            self.receipts = ReceiptSender(
                signer,
                prefix=settings.site_mqtt.topic_prefix,
                state=self.state,
                publish=lambda topic, payload: self.site.publish(topic, payload, qos=1),
                registry=self.metrics.registry,
            )
        else:
            log.warning(
                "gateway.receipt_key_dir / receipt_pkcs11 not set: no receipts are sent to stations"
            )
        self.metrics.held_evidence.set_function(lambda: float(len(self._held)))
        self.metrics.site_connected.set_function(lambda: float(self.site.connected.is_set()))
        self._held: list[tuple[SiteMessage, float]] = []
        self._retry: list[SiteMessage] = []
        self._stop = threading.Event()
        self._beat = time.monotonic()  # the worker's last turn (watchdog)
        self._worker = threading.Thread(
            target=self._run, name="edge-agent-gateway-worker", daemon=True
        )

    def start(self) -> None:
        """Connect both sides and start the worker."""
        self.upstream.start()
        self._worker.start()
        self.site.start()

    @property
    def connected(self) -> bool:
        """True while both the site and the upstream broker connections are up."""
        return self.site.connected.is_set() and self.upstream.link.connected

    def worker_alive(self, within_s: float) -> bool:
        """The worker thread runs and took a turn within the last ``within_s`` seconds."""
        return self._worker.is_alive() and time.monotonic() - self._beat < within_s

    def stop(self) -> None:
        """Finish the current batch (and its acks), disconnect, close the databases."""
        # The worker stops first so that the acks of its last batch still reach the site
        # broker; messages still in the inbox stay unacknowledged and come again next start.
        self._stop.set()
        if self._worker.is_alive():
            self._worker.join(timeout=10)
        self.site.stop()
        self.upstream.stop()
        self.outbox.close()
        self.dead_letters.close()
        self.metrics.close()
        self.state.close()
        if self._signer is not None:
            close_signer(self._signer)

    def _reload_trust_if_changed(self) -> None:
        # `edge-agent gateway trust revoke` takes effect without a restart. A store that
        # disappears or turns invalid is reported once per change; the last good one stays.
        path = self.settings.trust_store
        stamp = _stamp(path)
        if stamp == self._trust_stamp:
            return
        self._trust_stamp = stamp
        try:
            trust = TrustStore.load(path)
        except EdgeAgentError as exc:
            self.metrics.trust_store_ok.set(0)
            log.error(
                "trust store unusable, keeping the last good one (%d keys): %s",
                len(self.trust.entries()),
                exc,
                extra={"path": str(path)},
            )
            return
        self.trust = trust
        self.metrics.trust_store_ok.set(1)
        self.admission = Admission(settings=self.settings, state=self.state, trust=self.trust)
        log.info("trust store reloaded", extra={"path": str(path)})

    def _run(self) -> None:
        inbox = self.site.inbox
        limit = self.settings.batch_max
        while not self._stop.is_set():
            self._beat = time.monotonic()
            if self._beat >= self._next_replay:
                self._next_replay = self._beat + REPLAY_POLL_S
                self._replay_dead_letters()
            # Messages refused by a full outbox come first, in their order.
            batch, self._retry = self._retry[:limit], self._retry[limit:]
            if not batch:
                with contextlib.suppress(queue.Empty):
                    batch.append(inbox.get(timeout=0.25))
            while len(batch) < limit and not self._retry:
                try:
                    batch.append(inbox.get_nowait())
                except queue.Empty:
                    break
            if not (batch or self._held):
                continue
            try:
                self._reload_trust_if_changed()
                stored = self.process(batch)
            except Exception:  # a bug must not kill the worker: nothing was acked, retry
                log.exception("gateway batch failed")
                self.admission.rollback()
                self._retry, stored = batch + self._retry, False
            if stored:
                limit = self.settings.batch_max
            elif len(batch) > 1:
                limit = 1  # the outbox may take some of them: go one by one until one fits
            else:
                self._stop.wait(1.0)

    def process(self, messages: list[SiteMessage]) -> bool:
        """Decide, store and acknowledge one batch; False (nothing acked) if storing failed."""
        now = time.monotonic()
        held, self._held = self._held, []
        done: list[SiteMessage] = []
        forwards: list[Forward] = []
        rejects: list[tuple[SiteMessage, Reject]] = []
        # New messages first: an event in this batch releases evidence held from before.
        for msg, since in [(m, now) for m in messages] + held:
            decision = self.admission.decide(msg.topic, msg.payload)
            if isinstance(decision, Hold):
                if since + self.settings.evidence_wait_s <= now:
                    decision = Reject(
                        "evidence_unmatched", f"no accepted event {decision.event_id}"
                    )
                elif len(self._held) >= self.settings.max_held_evidence:
                    decision = Reject("evidence_overflow", f"more than {len(self._held)} held")
                else:
                    self._held.append((msg, since))
                    continue
            if isinstance(decision, Forward):
                forwards.append(decision)
            else:
                rejects.append((msg, decision))
            done.append(msg)
        try:
            # rejections are stored first: a failure here leaves the whole batch to retry
            evicted = self.dead_letters.add([_rejection(m, r) for m, r in rejects])
            if forwards:
                self.upstream.enqueue(_outbox_messages(forwards))
            self.admission.commit()
        except EdgeAgentError as exc:
            log.error("cannot store a batch of %d, will retry: %s", len(forwards), exc)
            self.admission.rollback()
            self._retry = list(messages) + self._retry
            self._held = held
            return False
        self.site.ack(done)
        if self.receipts is not None:
            self.receipts.send(forwards, [(m.topic, m.payload, r) for m, r in rejects])
        if evicted:
            self.metrics.dead_letters_dropped.inc(evicted)
        # One counter update per kind and batch; the debug line only when debug is on (its
        # extra dict costs about as much as the counter).
        kinds: dict[str, int] = {}
        for f in forwards:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        for kind, n in kinds.items():
            self.metrics.accepted.labels(kind=kind).inc(n)
        if log.isEnabledFor(logging.DEBUG):
            for f in forwards:
                log.debug(
                    "accepted",
                    extra={"event_id": f.event_id, "kind": f.kind, "station": f.station},
                )
        for msg, rej in rejects:
            self._rejected(msg, rej)
        return True

    def _rejected(self, msg: SiteMessage, rej: Reject) -> None:
        self.metrics.rejected.labels(reason=rej.reason).inc()
        log.warning(
            "rejected %s: %s",
            rej.reason,
            rej.detail,
            extra={
                "reason": rej.reason,
                "topic": msg.topic[:200],
                "site": rej.site,
                "station": rej.station,
                "size": len(msg.payload),
            },
        )
        if self.settings.quarantine_topic:
            self.site.publish(f"{self.settings.quarantine_topic}/{rej.reason}", msg.payload)

    def _replay_dead_letters(self) -> None:
        """Re-admit dead letters an operator marked (``gateway rejected replay``)."""
        try:
            self._reload_trust_if_changed()
            rows = self.dead_letters.due_for_replay(self.settings.batch_max)
        except EdgeAgentError as exc:
            log.error("cannot read dead letters to replay: %s", exc)
            return
        if not rows:
            return
        forwards: list[Forward] = []
        outcomes: list[Outcome] = []
        for row in rows:
            decision = self.admission.decide(row.topic, row.payload)
            if isinstance(decision, Hold):
                decision = Reject("evidence_unmatched", f"no accepted event {decision.event_id}")
            if isinstance(decision, Forward):
                forwards.append(decision)
                outcomes.append(Outcome(row.id))
            elif decision.reason == "duplicate":  # accepted before (a replay cut short)
                outcomes.append(Outcome(row.id))
            else:
                outcomes.append(Outcome(row.id, decision.reason, decision.detail))
        try:
            if forwards:
                self.upstream.enqueue(_outbox_messages(forwards))
            self.admission.commit()
            self.dead_letters.record(outcomes)
        except EdgeAgentError as exc:  # rows stay marked: tried again on the next turn
            log.error("cannot replay %d dead letters, will retry: %s", len(rows), exc)
            self.admission.rollback()
            return
        if self.receipts is not None:  # the station settles its held row on this receipt
            self.receipts.send(forwards, [])
        for row, outcome in zip(rows, outcomes, strict=True):
            result = "rejected" if outcome.reason else "accepted"
            self.metrics.replayed.labels(result=result).inc()
            log.info(
                "dead letter %d replayed: %s%s",
                row.id,
                result,
                f" {outcome.reason}: {outcome.detail}" if outcome.reason else "",
                extra={"dead_letter": row.id, "result": result, "reason": outcome.reason},
            )


REPLAY_POLL_S = 0.5  # how often the worker looks for dead letters marked for replay


def _outbox_messages(forwards: list[Forward]) -> list[OutboxMessage]:
    # a photo follows its event: with upstream receipts it is settled with the event's
    return [
        OutboxMessage(f.upstream_topic, f.payload, f.event_id, companion=f.kind == "evidence")
        for f in forwards
    ]


def _rejection(msg: SiteMessage, rej: Reject) -> Rejection:
    return Rejection(msg.topic, msg.payload, rej.reason, rej.detail, rej.site, rej.station)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file is replaced, rewritten or removed."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
