"""The gateway's decision for one site message: forward, reject (with a reason) or hold.

Pure apart from reading :class:`GatewayState`; the caller commits a batch of decisions
(outbox first, then :meth:`Admission.commit`) and only then acknowledges the site broker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from edge_agent.errors import EdgeAgentError, VerificationError
from edge_agent.gateway.envelope import verify_facts
from edge_agent.gateway.replay import ReplayWindow
from edge_agent.gateway.rotations import (
    AcceptedRotation,
    apply_rotation,
    check_rotation,
    persist_rotations,
)
from edge_agent.gateway.routing import SiteTopic, parse_site_topic, upstream_topic
from edge_agent.gateway.settings import GatewaySettings
from edge_agent.gateway.state import AcceptedRecord, GatewayState
from edge_agent.signing.trust import TrustStore


@dataclass(frozen=True)
class Forward:
    """Accepted: store in the outbox and publish upstream under ``upstream_topic``."""

    kind: Literal["event", "evidence", "key"]
    event_id: str  # the rotation_id for a key rotation statement
    site: str
    station: str
    upstream_topic: str
    payload: bytes
    kid: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class Reject:
    """Rejected with a short stable ``reason`` token; ``detail`` is for the log only."""

    reason: str
    detail: str = ""
    site: str = ""
    station: str = ""


@dataclass(frozen=True)
class Hold:
    """Evidence whose event has not been accepted yet: ask again later."""

    event_id: str


Decision = Forward | Reject | Hold


@dataclass
class _Batch:
    records: list[AcceptedRecord] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)
    evidence: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    forwarded_evidence: set[tuple[str, str]] = field(default_factory=set)
    windows: dict[str, ReplayWindow] = field(default_factory=dict)
    # rotation statements accepted in this batch and the trust store with them applied
    rotations: list[AcceptedRotation] = field(default_factory=list)
    trust: TrustStore | None = None


class Admission:
    """Checks site messages against limits, the trust store, replay windows and seen ids."""

    def __init__(
        self,
        *,
        settings: GatewaySettings,
        state: GatewayState,
        trust: TrustStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._prefix = settings.site_mqtt.topic_prefix
        self._state = state
        self._trust = trust
        self._clock = clock
        self._windows: dict[str, ReplayWindow] = {}
        self._batch = _Batch()

    def decide(self, topic: str, payload: bytes) -> Decision:
        """The decision for one message; never raises for any input."""
        try:
            site_topic = parse_site_topic(self._prefix, topic)
            if site_topic is None:
                return Reject("bad_topic", topic[:200])
            if site_topic.kind == "event":
                return self._decide_event(site_topic, payload)
            if site_topic.kind == "key":
                return self._decide_key(site_topic, payload)
            return self._decide_evidence(site_topic, payload)
        except EdgeAgentError as exc:  # state database trouble and the like
            return Reject("internal", str(exc))

    def _decide_event(self, topic: SiteTopic, payload: bytes) -> Decision:
        where = {"site": topic.site, "station": topic.station}
        if len(payload) > self._settings.max_message_bytes:
            return Reject("oversized", f"{len(payload)} bytes", **where)
        now = self._clock()
        try:
            event = verify_facts(payload, self.trust, at=now, full=self._settings.full_body_check)
        except VerificationError as exc:
            return Reject(exc.reason, exc.detail, **where)
        key = event.key
        if (key.site, key.station) != (topic.site, topic.station):
            return Reject("topic_mismatch", f"key of {key.site}/{key.station}", **where)
        if (event.site, event.station) != (topic.site, topic.station):
            return Reject("topic_mismatch", f"event of {event.site}/{event.station}", **where)
        if event.event_id in self._batch.event_ids or self._state.is_seen(event.event_id):
            return Reject("duplicate", event.event_id, **where)
        window = self._window(event.kid)
        fresh, why = window.check(event.boot_epoch, event.seq, self._settings.replay_window)
        if not fresh:
            return Reject("replay", f"{why} epoch={event.boot_epoch} seq={event.seq}", **where)
        new_window = window.accept(event.boot_epoch, event.seq, self._settings.replay_window)
        self._windows[event.kid] = new_window
        self._batch.windows[event.kid] = new_window
        hashes = event.evidence
        self._batch.event_ids.add(event.event_id)
        self._batch.records.append(
            AcceptedRecord(event.event_id, event.kid, topic.site, topic.station, hashes)
        )
        for sha in hashes:
            self._batch.evidence[(sha, event.event_id)] = (topic.site, topic.station)
        return Forward(
            "event",
            event.event_id,
            topic.site,
            topic.station,
            upstream_topic(self._settings.upstream_prefix, topic),
            payload,
            kid=event.kid,
        )

    def _decide_key(self, topic: SiteTopic, payload: bytes) -> Decision:
        where = {"site": topic.site, "station": topic.station}
        if len(payload) > self._settings.max_message_bytes:
            return Reject("oversized", f"{len(payload)} bytes", **where)
        try:
            accepted = check_rotation(payload, self.trust, topic=topic, at=self._clock())
        except VerificationError as exc:
            return Reject(exc.reason, exc.detail, **where)
        # later messages of this batch (the new key's first events) verify with the new key
        if self._batch.trust is None:
            self._batch.trust = self._trust.copy()
        apply_rotation(
            self._batch.trust, accepted, max_overlap_s=self._settings.rotation_max_overlap_s
        )
        self._batch.rotations.append(accepted)
        rotation = accepted.rotation
        return Forward(
            "key",
            rotation.rotation_id,
            topic.site,
            topic.station,
            upstream_topic(self._settings.upstream_prefix, topic),
            payload,
            kid=rotation.old_kid.hex(),
        )

    @property
    def trust(self) -> TrustStore:
        """The trust store decisions use now (with this batch's rotations applied)."""
        return self._batch.trust or self._trust

    def _decide_evidence(self, topic: SiteTopic, payload: bytes) -> Decision:
        where = {"site": topic.site, "station": topic.station}
        if len(payload) > self._settings.max_evidence_bytes:
            return Reject("oversized", f"evidence {len(payload)} bytes", **where)
        sha = hashlib.sha256(payload).hexdigest()
        key = (sha, topic.event_id)
        owner = self._batch.evidence.get(key)
        forwarded = key in self._batch.forwarded_evidence
        if owner is None:
            row = self._state.expected(sha, topic.event_id)
            if row is not None:
                owner, forwarded = (row.site, row.station), row.forwarded or forwarded
        if owner is None:
            if topic.event_id in self._batch.event_ids or self._state.is_seen(topic.event_id):
                return Reject("evidence_mismatch", f"{sha} not in event {topic.event_id}", **where)
            return Hold(topic.event_id)
        if owner != (topic.site, topic.station):
            return Reject("topic_mismatch", f"evidence of {owner[0]}/{owner[1]}", **where)
        if forwarded:
            return Reject("duplicate", f"evidence {sha}", **where)
        self._batch.forwarded_evidence.add(key)
        return Forward(
            "evidence",
            topic.event_id,
            topic.site,
            topic.station,
            upstream_topic(self._settings.upstream_prefix, topic),
            payload,
            sha256=sha,
        )

    def _window(self, kid: str) -> ReplayWindow:
        window = self._windows.get(kid)
        if window is None:
            window = self._state.window(kid)
            self._windows[kid] = window
        return window

    def commit(self) -> None:
        """Persist what this batch accepted (after the outbox commit, before the acks)."""
        batch, self._batch = self._batch, _Batch()
        try:
            if batch.rotations:  # the trust store first: a retried batch finds them applied
                self._trust = persist_rotations(
                    self._settings.trust_store,
                    batch.rotations,
                    max_overlap_s=self._settings.rotation_max_overlap_s,
                )
            self._state.commit(batch.records, batch.windows, batch.forwarded_evidence)
        except EdgeAgentError:
            self._windows.clear()
            raise

    def rollback(self) -> None:
        """Forget this batch (its outbox commit failed; the messages stay unacknowledged)."""
        self._batch = _Batch()
        self._windows.clear()
