"""EU battery-passport identifiers (Regulation (EU) 2023/1542 Art. 13/77): QR URL or plain id.

The regulation only says the QR code leads to a unique identifier; its syntax is not fixed
(ISO/IEC 15459 is cited by secondary sources, unconfirmed). Recognition is therefore heuristic:
an http(s) URL whose host or path names a passport (``passport``, ``batterypass``, ``dpp``) or
that is a GS1 Digital Link (``/01/<GTIN>``), or a plain URN / DID identifier.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from edge_agent.errors import CodeError

_KEYWORDS = re.compile(r"passport|batterypass|battery-pass|battery_pass|(?:^|[./-])dpp(?:$|[./-])")
_DIGITAL_LINK = re.compile(r"/01/(\d{14})(?:/21/([^/?#]+))?")
_URN = re.compile(r"urn:(?:uuid|epc|gs1|dpp|batterypass|catenax)[:][\x21-\x7e]{1,200}", re.I)
_DID = re.compile(r"did:[a-z0-9]+:[\x21-\x7e]{1,200}")
_MAX = 2048


@dataclass(frozen=True, kw_only=True)
class PassportId:
    """An EU battery-passport identifier; ``url`` is empty for a plain identifier."""

    identifier: str
    url: str = ""
    host: str = ""
    scheme: str = ""  # "https", "http", "urn", "did"
    gtin: str = ""  # GS1 Digital Link only
    serial: str = ""  # GS1 Digital Link only
    match: str = ""  # "keyword", "gs1_digital_link", "urn", "did"


def parse_passport(text: str) -> PassportId:
    """Recognise a passport URL or plain identifier; CodeError when the text is neither."""
    raw = text.strip()
    if not raw or len(raw) > _MAX:
        raise CodeError("passport identifier must be 1..2048 characters", text=text)
    for i, ch in enumerate(raw, start=1):
        if not ("\x21" <= ch <= "\x7e"):
            raise CodeError(f"character {ch!r} not allowed in an identifier", text=text, position=i)
    lower = raw.lower()
    if lower.startswith(("http://", "https://")):
        return _parse_url(raw, text)
    if _URN.fullmatch(raw):
        return PassportId(identifier=raw, scheme="urn", match="urn")
    if _DID.fullmatch(raw):
        return PassportId(identifier=raw, scheme="did", match="did")
    raise CodeError("not a passport URL, URN or DID", text=text)


def _parse_url(raw: str, text: str) -> PassportId:
    try:
        parts = urllib.parse.urlsplit(raw)
        host = parts.hostname or ""
    except ValueError as exc:
        raise CodeError(f"malformed URL: {exc}", text=text) from None
    if not host:
        raise CodeError("URL has no host", text=text, position=len(parts.scheme) + 4)
    path = urllib.parse.unquote(parts.path)
    link = _DIGITAL_LINK.search(path)
    if link:
        return PassportId(
            identifier=link.group(0).lstrip("/"),
            url=raw,
            host=host,
            scheme=parts.scheme.lower(),
            gtin=link.group(1),
            serial=link.group(2) or "",
            match="gs1_digital_link",
        )
    if not _KEYWORDS.search(f"{host.lower()}{path.lower()}"):
        raise CodeError("URL does not look like a battery passport link", text=text)
    segments = [s for s in path.split("/") if s]
    query_id = urllib.parse.parse_qs(parts.query).get("id", [""])[0]
    identifier = query_id or (segments[-1] if segments else host)
    return PassportId(
        identifier=identifier, url=raw, host=host, scheme=parts.scheme.lower(), match="keyword"
    )
