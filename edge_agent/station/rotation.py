"""Key rotation at the station: make the next key, send the statement, switch when accepted.

``rotate`` creates the next key, signs the rotation statement (old key outside, new key
inside, bound to the station's key topic ``<site>/<station>/key``), keeps it beside the next key and commits it to the
outbox like an event (durable, re-sent until a receipt settles it). The station keeps signing
with the old key until the gateway's signed receipt accepts the statement; only then
(``on_receipt``, before the receipt removes the outbox row) does it switch to the new key. So
no event signed by the new key can reach a gateway that does not trust it yet, whatever the
order of delivery. Without receipts (no gateway) it switches at once.

Works through the ``Signer`` protocol and a ``KeyRing``: ``FileKeyRing`` (key files) or
``TokenKeyRing`` (keys inside a PKCS#11 token), chosen by ``tokens.configured.open_keyring``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from edge_agent.errors import StationError
from edge_agent.event_codec import uuid7
from edge_agent.signing.keyring import RetiredKey
from edge_agent.signing.receipts import Receipt
from edge_agent.signing.rotation import KeyRotation, peek_rotation, sign_rotation
from edge_agent.signing.signer import Signer
from edge_agent.uplink.outbox import OutboxMessage
from edge_agent.uplink.topics import StationTopics

log = logging.getLogger(__name__)
DEFAULT_OVERLAP_S = 7 * 86400


class KeyRing(Protocol):
    """Where the station's keys live and how the next one becomes the active one."""

    def active(self) -> Signer:
        """The signer of the key that signs now."""
        ...

    def create_next(self, alg: Literal["ed25519", "p256"]) -> Signer:
        """Create the next key; an error when a rotation is already pending."""
        ...

    def is_pending(self) -> bool:
        """Whether a next key waits for its statement to be accepted."""
        ...

    def pending_signer(self) -> Signer:
        """The next key's signer."""
        ...

    def save_statement(self, statement: bytes) -> None:
        """Keep the signed statement durably beside the next key."""
        ...

    def statement(self) -> bytes | None:
        """The pending statement, if one was signed."""
        ...

    def switch(self, *, rotation_id: str, retire_after: datetime) -> Signer:
        """Make the next key the active one; the old one is kept until ``retire_after``."""
        ...

    def retired(self) -> list[RetiredKey]:
        """Keys rotated away, oldest first, and where their private keys still are."""
        ...

    def retire(self, *, now: datetime | None = None, force: bool = False) -> list[str]:
        """Delete the private keys whose overlap has ended (all with ``force``); their kids."""
        ...

    def close(self) -> None:
        """Release what the ring holds (token sessions)."""
        ...


class Enqueue(Protocol):
    """The outbox publisher's ``enqueue`` (commit, then wake the sender)."""

    def __call__(self, messages: list[OutboxMessage]) -> object: ...


@dataclass(frozen=True, slots=True)
class RotationStarted:
    """What ``rotate`` did."""

    rotation_id: str
    old_kid: str
    new_kid: str
    switched: bool  # False: the old key signs until the gateway accepts the statement


class KeyRotator:
    """The station's side of a key rotation."""

    def __init__(
        self,
        *,
        keys: KeyRing,
        signer: Signer,
        topics: StationTopics,
        enqueue: Enqueue,
        receipts: bool,
        on_switch: Callable[[Signer], None],
        overlap_s: int = DEFAULT_OVERLAP_S,
    ) -> None:
        self.keys = keys
        self.signer = signer
        self._topics = topics
        self._enqueue = enqueue
        self._receipts = receipts
        self._on_switch = on_switch
        self._overlap_s = overlap_s
        self._lock = threading.Lock()  # rotate (event loop) against on_receipt (MQTT thread)
        self.pending: KeyRotation | None = None
        statement = keys.statement() if keys.is_pending() else None
        if statement is not None:
            self.pending = peek_rotation(statement)

    @property
    def pending_id(self) -> str | None:
        """The rotation_id of the statement waiting for the gateway, if any."""
        return self.pending.rotation_id if self.pending is not None else None

    def resume(self) -> None:
        """At start: queue a pending statement again (the outbox ignores one it holds) and
        switch at once when there is no gateway to wait for."""
        with self._lock:
            if not self.keys.is_pending():
                return
            statement = self.keys.statement()
            if statement is None or self.pending is None:
                # the next key was made but never signed for: sign now
                self._sign_and_queue(self.keys.pending_signer(), self._overlap_s)
            else:
                self._enqueue(
                    [OutboxMessage(self._topics.key, statement, self.pending.rotation_id)]
                )
                log.info("key rotation %s pending: statement queued", self.pending.rotation_id)
            if not self._receipts:
                self._switch()

    def rotate(
        self,
        *,
        alg: Literal["ed25519", "p256"],
        overlap_s: int | None = None,
        not_after: datetime | None = None,
    ) -> RotationStarted:
        """Create the next key and queue its statement; switch now only without receipts."""
        with self._lock:
            if self.keys.is_pending():
                raise StationError(
                    f"key rotation {self.pending_id or '(unsigned)'} is still pending; the "
                    "station switches keys when the gateway accepts it (edge-agent keys show)"
                )
            old = self.signer
            new = self.keys.create_next(alg)
            rotation_id = self._sign_and_queue(
                new, self._overlap_s if overlap_s is None else overlap_s, not_after
            )
            switched = not self._receipts
            if switched:
                self._switch()
            return RotationStarted(rotation_id, old.kid.hex(), new.kid.hex(), switched)

    def _sign_and_queue(
        self, new: Signer, overlap_s: int, not_after: datetime | None = None
    ) -> str:
        now_ms = int(time.time() * 1000)
        rotation = KeyRotation(
            rotation_id=uuid7(now_ms),
            site=self._topics.site,
            station=self._topics.station,
            old_kid=self.signer.kid,
            new_key=new.public_key,
            overlap_s=overlap_s,
            issued_ms=now_ms,
            not_after_ms=int(not_after.timestamp() * 1000) if not_after else None,
        )
        statement = sign_rotation(rotation, self.signer, new)
        self.keys.save_statement(statement)  # first: a crash before the outbox re-queues it
        self.pending = rotation
        self._enqueue([OutboxMessage(self._topics.key, statement, rotation.rotation_id)])
        log.warning(
            "key rotation %s: statement queued, %s -> %s",
            rotation.rotation_id,
            self.signer.kid.hex(),
            new.kid.hex(),
            extra={"rotation_id": rotation.rotation_id},
        )
        return rotation.rotation_id

    def on_receipt(self, receipt: Receipt) -> None:
        """Switch keys when a verified receipt accepts the pending statement (called before
        the receipt settles the outbox, so a crash in between switches at the next receipt)."""
        with self._lock:
            pending = self.pending_id
            for item in receipt.items if pending is not None else ():
                if item.event_id != pending:
                    continue
                if item.status == "accepted":
                    self._switch()
                    return
                log.error(
                    "gateway rejected key rotation %s: %s %s; still signing with %s",
                    pending,
                    item.reason,
                    item.detail,
                    self.signer.kid.hex(),
                )

    def _switch(self) -> None:
        assert self.pending is not None
        rotation_id = self.pending.rotation_id
        # the old private key is kept as long as the gateway may still accept it
        retire_after = datetime.now(UTC) + timedelta(seconds=self.pending.overlap_s)
        self.signer = self.keys.switch(rotation_id=rotation_id, retire_after=retire_after)
        self.pending = None
        self._on_switch(self.signer)
        log.warning(
            "now signing with key %s (rotation %s)",
            self.signer.kid.hex(),
            rotation_id,
            extra={"rotation_id": rotation_id},
        )
