"""Host side of the node line protocol: ``@<json>*<crc32 hex>\\n`` (see firmware/app/nodeproto.py).

Unmarked lines (prints, tracebacks, REPL banners) are logged and skipped; marked lines with a bad
CRC, bad JSON, a bad envelope or another major version raise :class:`NodeProtocolError`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge_agent.dataform import DataFormError, from_plain
from edge_agent.errors import NodeProtocolError
from edge_agent.nodes.messages import BODY_TYPES, Body, Envelope

log = logging.getLogger("edge_agent.nodes.protocol")

PROTO_MAJOR = 1
PROTO_MINOR = 0
MAX_LINE = 1024  # longer lines are dropped at the link (the node caps its own at 512)


@dataclass(frozen=True, kw_only=True)
class NodeMessage:
    """One validated line from a node: envelope plus typed body."""

    envelope: Envelope
    body: Body

    @property
    def type(self) -> str:
        """Message type token (``hello``, ``hb``, ``w``, ``s``, ``dock``, ``ack``, ``nak``)."""
        return self.envelope.t

    @property
    def node_id(self) -> str:
        """The node's unique id (hex)."""
        return self.envelope.node


def crc_hex(payload: bytes) -> bytes:
    """CRC-32 (ZIP) of ``payload`` as 8 lowercase hex bytes."""
    return b"%08x" % zlib.crc32(payload)


def frame(payload: bytes) -> bytes:
    """Frame JSON bytes as one protocol line."""
    return b"@" + payload + b"*" + crc_hex(payload) + b"\n"


def encode_command(cmd_id: int, op: str, args: Mapping[str, Any] | None = None) -> bytes:
    """A framed host command line."""
    body = {"v": PROTO_MAJOR, "t": "cmd", "id": cmd_id, "op": op, "args": dict(args or {})}
    return frame(json.dumps(body, separators=(",", ":")).encode())


def unframe(line: bytes) -> bytes | None:
    """The JSON payload of a marked line; None for an unmarked line; error for a bad frame."""
    line = line.rstrip(b"\r\n")
    if not line.startswith(b"@"):
        return None
    if len(line) > MAX_LINE:
        raise NodeProtocolError(f"line too long ({len(line)} bytes)")
    if len(line) < 11 or line[-9:-8] != b"*":
        raise NodeProtocolError("line has no CRC suffix (truncated?)")
    payload = line[1:-9]
    if crc_hex(payload) != line[-8:]:
        raise NodeProtocolError("CRC mismatch")
    return payload


def parse_line(line: bytes) -> NodeMessage | None:
    """Validate one line into a :class:`NodeMessage`; None for unmarked (log) lines."""
    payload = unframe(line)
    if payload is None:
        return None
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise NodeProtocolError(f"bad JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise NodeProtocolError("payload is not a JSON object")
    v = obj.get("v")
    if v != PROTO_MAJOR or isinstance(v, bool):
        raise NodeProtocolError(f"protocol version {v!r} not supported (want {PROTO_MAJOR})")
    env_keys = {f.name for f in dataclasses.fields(Envelope)}
    try:
        env = from_plain(Envelope, {k: obj[k] for k in env_keys if k in obj})
        body_type = BODY_TYPES.get(env.t)
        if body_type is None:
            raise NodeProtocolError(f"unknown message type {env.t!r}")
        # ignore fields a newer minor version added
        names = {f.name for f in dataclasses.fields(body_type)}
        body: Body = from_plain(body_type, {k: v for k, v in obj.items() if k in names})
    except DataFormError as exc:
        raise NodeProtocolError(f"bad message: {exc}") from None
    return NodeMessage(envelope=env, body=body)
