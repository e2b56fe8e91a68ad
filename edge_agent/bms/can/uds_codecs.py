"""Pure decoding of UDS DID payloads into reading values (codecs named in profiles)."""

from __future__ import annotations

import datetime

from edge_agent.bms.can.profile_sections import UdsDid
from edge_agent.errors import FrameError


def _bcd(raw: bytes) -> str:
    digits = raw.hex()
    if not digits.isdigit():
        raise FrameError(f"not BCD: {raw.hex().upper()}", frame=raw)
    return digits


def decode_bcd_date(raw: bytes) -> str:
    """YYMMDD (3 bytes) or YYYYMMDD (4 bytes) in BCD to an ISO date."""
    digits = _bcd(raw)
    if len(raw) == 3:
        year, month, day = 2000 + int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    elif len(raw) == 4:
        year, month, day = int(digits[0:4]), int(digits[4:6]), int(digits[6:8])
    else:
        raise FrameError(f"BCD date needs 3 or 4 bytes, got {len(raw)}", frame=raw)
    try:
        return datetime.date(year, month, day).isoformat()
    except ValueError:
        raise FrameError(f"invalid date {digits}", frame=raw) from None


def decode_ascii(raw: bytes) -> str:
    """Printable ASCII with NUL/0xFF/space padding removed."""
    text = raw.strip(b"\x00\xff ")
    if not text:
        raise FrameError("empty text", frame=raw)
    if any(c < 0x20 or c > 0x7E for c in text):
        raise FrameError(f"not printable ASCII: {raw.hex().upper()}", frame=raw)
    return text.decode("ascii")


def decode_did(spec: UdsDid, payload: bytes) -> str | float:
    """Decode the DID payload (after the DID echo) as the profile's codec says."""
    rest = len(payload) - spec.start
    length = spec.length or (2 if spec.codec in ("uint", "sint") else rest)
    raw = payload[spec.start : spec.start + length]
    if len(raw) < length or not raw:
        raise FrameError(f"needs {spec.start + length} bytes, got {len(payload)}", frame=payload)
    if spec.codec == "ascii":
        return decode_ascii(raw)
    if spec.codec == "hex":
        return raw.hex().upper()
    if spec.codec == "bcd_date":
        return decode_bcd_date(raw)
    value = int.from_bytes(raw, spec.byte_order, signed=spec.codec == "sint")
    return value * spec.scale + spec.offset
