"""Deterministic CBOR encoding of identification events and UUIDv7 event ids."""

from __future__ import annotations

import io
import os
import time
import uuid
from typing import Any

import cbor2

from edge_agent.dataform import DataFormError, from_plain, to_plain
from edge_agent.errors import EdgeAgentError
from edge_agent.model import IdentificationEvent


class EventFormatError(EdgeAgentError, ValueError):
    """Bytes or data do not form a valid v1 identification event."""


def uuid7(unix_ms: int | None = None) -> str:
    """A new RFC 9562 UUIDv7 as text (48-bit ms timestamp, 74 random bits)."""
    ms = int(time.time() * 1000) if unix_ms is None else unix_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & (2**62 - 1)
    return str(uuid.UUID(int=value))


def event_to_plain(event: IdentificationEvent) -> dict[str, Any]:
    """The event as a plain map with text keys (the decoded form of the schema)."""
    plain = to_plain(event)
    assert isinstance(plain, dict)
    return plain


def encode_event(event: IdentificationEvent) -> bytes:
    """Deterministic CBOR (RFC 8949 section 4.2.1: sorted keys, shortest forms)."""
    return encode_plain(event_to_plain(event))


def encode_plain(plain: Any) -> bytes:
    """Deterministic CBOR of plain data."""
    return bytes(cbor2.dumps(plain, canonical=True))


def event_from_plain(plain: Any) -> IdentificationEvent:
    """Validate a decoded map as a v1 event."""
    try:
        return from_plain(IdentificationEvent, plain)
    except DataFormError as exc:
        raise EventFormatError(str(exc)) from None


def decode_event(data: bytes) -> IdentificationEvent:
    """Parse and validate CBOR bytes as a v1 event; typed error on anything else."""
    return decode_body(data)[0]


def decode_body(data: bytes) -> tuple[IdentificationEvent, dict[str, Any]]:
    """``decode_event``, with the decoded map it validated (the body as the station sent it)."""
    stream = io.BytesIO(data)
    try:
        # duplicate keys would let two CBOR parsers read different values from one body
        plain = cbor2.CBORDecoder(stream, allow_duplicate_keys=False).decode()
    except Exception as exc:  # cbor2 raises several unrelated types on bad input
        raise EventFormatError(f"not valid CBOR: {exc}") from None
    if stream.tell() != len(data):  # cbor2.loads would silently ignore these
        raise EventFormatError(f"{len(data) - stream.tell()} bytes after the event")
    return event_from_plain(plain), plain
