"""Recovery where the fix is certain: re-sign events the gateway rejected as replays.

A "replay" rejection means the station signed under a (boot_epoch, seq) the gateway has
already passed: its boot_epoch file was lost or rolled back. The receipt carries the newest
(epoch, seq) the gateway accepted from the key, so the station moves its boot epoch above it
(stored durably, beside the key too) and re-signs the held event under the new epoch and the
next seq, keeping its event_id: the gateway never accepted that id, so it takes it now, and
the backend still sees one event.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import cbor2

from edge_agent.event_codec import decode_event
from edge_agent.signing.events import sign_event
from edge_agent.signing.receipts import ReceiptItem
from edge_agent.signing.signer import Signer
from edge_agent.station.boot import BootCounter
from edge_agent.uplink.outbox import Outbox

log = logging.getLogger(__name__)


class ReplayRecovery:
    """Re-signs a rejected event under a boot epoch above the gateway's last one."""

    def __init__(self, *, outbox: Outbox, signer: Signer, counter: BootCounter) -> None:
        self._outbox = outbox
        #: the key events are re-signed with (a key rotation replaces it)
        self.signer = signer
        self._counter = counter

    def __call__(self, item: ReceiptItem) -> bool:
        """True when the event was re-signed and is due again; False leaves it rejected."""
        rows = [r for r in self._outbox.rows_for(item.event_id) if r.topic.endswith("/event")]
        if not rows or rows[0].state != "rejected":
            return False
        row = rows[0]
        try:
            envelope = cbor2.loads(row.payload)
            event = decode_event(envelope.value[2])
        except Exception as exc:  # not our own event format: leave it to a person
            log.error("cannot re-sign held event %s: %s", item.event_id, exc)
            return False
        signer = self.signer
        # an event signed by a key rotated away since is re-signed with the current key (the
        # gateway's window for the new key is its own, so the epoch move is only a floor)
        gateway_epoch = item.last[0] if item.last is not None else event.boot_epoch
        epoch, seq = self._counter.move_above(max(gateway_epoch, event.boot_epoch))
        message = sign_event(
            replace(event, kid=signer.kid.hex(), boot_epoch=epoch, seq=seq), signer
        )
        self._outbox.retry([row.id])  # the event and its evidence rows: stored, due now
        self._outbox.replace_payload(row.id, message)
        log.warning(
            "event %s re-signed under boot epoch %d seq %d (was %d/%d)",
            item.event_id,
            epoch,
            seq,
            event.boot_epoch,
            event.seq,
            extra={"event_id": item.event_id, "boot_epoch": epoch, "seq": seq},
        )
        return True
