"""ISO/IEC 15434 envelopes: ``[)>`` RS, then formats ``NN`` GS data ... RS, then EOT."""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge_agent.codes.gs1 import parse_gs1
from edge_agent.errors import CodeError

HEADER = "[)>\x1e"
RS, GS, EOT = "\x1e", "\x1d", "\x04"
# ANSI MH10.8.2 data identifier: up to 3 digits then one letter (e.g. "P", "1P", "25S").
_DI = re.compile(r"(\d{0,3}[A-Z])(.*)", re.S)


@dataclass(frozen=True, kw_only=True)
class Iso15434Element:
    """One data element: identifier (DI, AI or text-element id) and value."""

    identifier: str
    value: str


@dataclass(frozen=True, kw_only=True)
class Iso15434Format:
    """One format envelope inside the message (``06`` = ANSI DIs, ``05`` = GS1 AIs)."""

    format_id: str
    elements: tuple[Iso15434Element, ...]


@dataclass(frozen=True, kw_only=True)
class Iso15434Message:
    """A parsed ISO/IEC 15434 message."""

    formats: tuple[Iso15434Format, ...]


def looks_like_iso15434(text: str) -> bool:
    """True when the text starts with the 15434 message header."""
    return text.startswith(HEADER)


def parse_iso15434(text: str) -> Iso15434Message:
    """Parse the envelope; CodeError names the position of the first violation."""
    if not text.startswith(HEADER):
        raise CodeError("ISO/IEC 15434 header '[)>' RS missing", text=text, position=1)
    end = text.find(EOT, len(HEADER))
    if end < 0:
        raise CodeError("ISO/IEC 15434 trailer EOT missing", text=text, position=len(text))
    if end != len(text) - 1:
        raise CodeError("data after the EOT trailer", text=text, position=end + 2)
    body = text[len(HEADER) : end]
    formats: list[Iso15434Format] = []
    pos = len(HEADER)
    for chunk in body.split(RS):
        if chunk:
            formats.append(_format(text, chunk, pos))
        pos += len(chunk) + 1
    if not formats:
        raise CodeError("15434 message holds no format", text=text, position=len(HEADER) + 1)
    return Iso15434Message(formats=tuple(formats))


def _format(text: str, chunk: str, pos: int) -> Iso15434Format:
    fid = chunk[:2]
    if not (len(fid) == 2 and fid.isdigit()):
        raise CodeError(f"format indicator {fid!r} must be two digits", text=text, position=pos + 1)
    rest = chunk[2:]
    if rest and not rest.startswith(GS):
        raise CodeError("GS expected after the format indicator", text=text, position=pos + 3)
    fields = [f for f in rest.split(GS)[1:]]
    if fid == "05":
        msg = parse_gs1(GS.join(fields))
        return Iso15434Format(
            format_id=fid,
            elements=tuple(Iso15434Element(identifier=e.ai, value=e.value) for e in msg.elements),
        )
    elements: list[Iso15434Element] = []
    at = pos + 3
    for field in fields:
        if fid == "06":
            m = _DI.fullmatch(field)
            if not m:
                raise CodeError(
                    f"data identifier missing in {field[:8]!r}", text=text, position=at + 1
                )
            if any(e.identifier == m.group(1) for e in elements):
                # keeping either value silently would hide which one the label meant
                raise CodeError(
                    f"data identifier {m.group(1)} repeated", text=text, position=at + 1
                )
            elements.append(Iso15434Element(identifier=m.group(1), value=m.group(2)))
        else:  # other formats: keep the element whole
            elements.append(Iso15434Element(identifier="", value=field))
        at += len(field) + 1
    return Iso15434Format(format_id=fid, elements=tuple(elements))
