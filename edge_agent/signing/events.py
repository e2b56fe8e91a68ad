"""Sign and verify identification events: the calls the station and the gateway use."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edge_agent.errors import SigningError, VerificationError
from edge_agent.event_codec import EventFormatError, decode_body, encode_event
from edge_agent.model import IdentificationEvent
from edge_agent.signing.cose import EVENT_POLICY, KeyResolver, sign1, verify_sign1
from edge_agent.signing.signer import Signer

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class VerifiedEvent:
    """An event whose envelope, key and body all checked out."""

    event: IdentificationEvent
    kid: bytes
    alg: int
    payload: bytes
    # the decoded body map the event was validated from (read only: ingest writes it as JSON)
    body: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def sign_event(event: IdentificationEvent, signer: Signer, *, external_aad: bytes = b"") -> bytes:
    """The event as deterministic CBOR inside a tagged COSE_Sign1 from ``signer``."""
    if event.kid != signer.kid.hex():
        raise SigningError(f"event kid {event.kid} is not the signer's key id {signer.kid.hex()}")
    return sign1(encode_event(event), signer, external_aad=external_aad)


def verify_event(
    message: bytes, keys: KeyResolver, *, at: datetime | None = None, external_aad: bytes = b""
) -> VerifiedEvent:
    """Verify envelope and key, then decode and validate the body; VerificationError if not."""
    try:
        verified = verify_sign1(
            message, keys, external_aad=external_aad, policy=EVENT_POLICY, at=at
        )
        try:
            event, body = decode_body(verified.payload)
        except EventFormatError as exc:
            raise VerificationError("bad_payload", str(exc)) from None
        kid_hex = verified.kid.hex()
        if event.kid != kid_hex:
            raise VerificationError("kid_mismatch", f"body kid {event.kid}, signed with {kid_hex}")
        # A key bound to a station/site in the trust store may only speak for that station.
        station = getattr(verified.key, "station", "")
        site = getattr(verified.key, "site", "")
        if (station and station != event.station) or (site and site != event.site):
            raise VerificationError(
                "station_mismatch",
                f"kid {kid_hex} belongs to {site}/{station}, "
                f"event claims {event.site}/{event.station}",
            )
    except VerificationError as exc:
        log.warning("event rejected: %s", exc)
        raise
    return VerifiedEvent(
        event=event, kid=verified.kid, alg=verified.alg, payload=verified.payload, body=body
    )
