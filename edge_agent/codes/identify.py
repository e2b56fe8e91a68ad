"""Dispatcher: classify any decoded text as a GB/T 34014 code, passport id, GS1, 15434 or text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge_agent.codes.gbt34014 import CascadeCode, PackCode, parse_cascade_code, parse_pack_code
from edge_agent.codes.gs1 import Gs1Message, looks_like_gs1, parse_gs1
from edge_agent.codes.iso15434 import Iso15434Message, looks_like_iso15434, parse_iso15434
from edge_agent.codes.passport import PassportId, parse_passport
from edge_agent.errors import CodeError

CodeKind = Literal["gbt34014", "gbt34014_cascade", "passport", "gs1", "iso15434", "text"]
#: Kinds that identify a pack: a decode pass that yields one of them is "validated".
IDENTITY_KINDS: frozenset[str] = frozenset({"gbt34014", "gbt34014_cascade", "passport"})
MAX_TEXT = 8192


@dataclass(frozen=True, kw_only=True)
class ParsedCode:
    """Decoded text and what it parsed as; ``value`` is None for plain text."""

    kind: CodeKind
    text: str
    value: PackCode | CascadeCode | PassportId | Gs1Message | Iso15434Message | None = None
    problem: str = ""  # why a structured-looking text fell back to "text"

    def fields_as_text(self) -> dict[str, str]:
        """Flat text fields for ``edge_agent.model.LabelCode.fields``."""
        v = self.value
        if isinstance(v, PackCode | CascadeCode):
            out = {
                "manufacturer": v.manufacturer,
                "product_type": v.product_type,
                "product_level": v.product_level,
                "battery_type": v.battery_type,
                "battery_type_letter": v.battery_type_letter,
                "spec": v.spec,
                "serial": v.serial,
            }
            if v.production_date is not None:
                out["production_date"] = v.production_date.iso
                out["production_date_confidence"] = v.production_date.confidence
                out["date_code"] = v.production_date.raw
            else:
                out["date_code"] = v.code[14:17] if isinstance(v, PackCode) else v.code[7:10]
                out["date_problem"] = v.date_problem
            if isinstance(v, PackCode):
                out["traceability"] = v.traceability
            else:
                out["original_level"] = v.original_level
            return out
        if isinstance(v, PassportId):
            raw = {
                "identifier": v.identifier,
                "url": v.url,
                "host": v.host,
                "scheme": v.scheme,
                "gtin": v.gtin,
                "serial": v.serial,
                "match": v.match,
            }
            return {k: s for k, s in raw.items() if s}
        if isinstance(v, Gs1Message):
            out = {}
            for e in v.elements:
                out.setdefault(e.name, e.value_iso or e.value)
            return out
        if isinstance(v, Iso15434Message):
            out = {}
            for fmt in v.formats:
                for i, el in enumerate(fmt.elements):
                    out.setdefault(f"{fmt.format_id}:{el.identifier or i}", el.value)
            return out
        return {"problem": self.problem} if self.problem else {}


def parse_identifier(text: str, *, gs1_hint: bool = False) -> ParsedCode:
    """Classify ``text``; never raises for content (only for non-str input via TypeError).

    ``gs1_hint`` is set by a decoder that knows the symbol carried FNC1 (GS1 content type).
    Text that looks structured but fails to parse falls back to kind ``text`` with ``problem``.
    """
    if len(text) > MAX_TEXT:
        return ParsedCode(kind="text", text=text, problem=f"text longer than {MAX_TEXT}")
    stripped = text.strip()
    problem = ""
    try:
        if looks_like_iso15434(text):
            return ParsedCode(kind="iso15434", text=text, value=parse_iso15434(text))
        if gs1_hint or looks_like_gs1(text):
            return ParsedCode(kind="gs1", text=text, value=parse_gs1(text))
        if len(stripped) == 24:
            return ParsedCode(kind="gbt34014", text=text, value=parse_pack_code(stripped))
        if len(stripped) == 19:
            return ParsedCode(
                kind="gbt34014_cascade", text=text, value=parse_cascade_code(stripped)
            )
    except CodeError as exc:
        problem = str(exc)
    try:
        return ParsedCode(kind="passport", text=text, value=parse_passport(stripped))
    except CodeError:
        return ParsedCode(kind="text", text=text, problem=problem)


def parse_strict(text: str) -> ParsedCode:
    """Like parse_identifier but raise the CodeError of the structured kind the text resembles."""
    stripped = text.strip()
    if looks_like_iso15434(text):
        return ParsedCode(kind="iso15434", text=text, value=parse_iso15434(text))
    if looks_like_gs1(text):
        return ParsedCode(kind="gs1", text=text, value=parse_gs1(text))
    if stripped.lower().startswith(("http://", "https://", "urn:", "did:")):
        return ParsedCode(kind="passport", text=text, value=parse_passport(stripped))
    if len(stripped) == 19:
        return ParsedCode(kind="gbt34014_cascade", text=text, value=parse_cascade_code(stripped))
    return ParsedCode(kind="gbt34014", text=text, value=parse_pack_code(stripped))
