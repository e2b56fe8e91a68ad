"""GS1 element strings: application identifiers (AIs) separated by FNC1/GS, and the HRI form."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass

from edge_agent.errors import CodeError

GS = "\x1d"
#: Symbology identifiers that announce GS1 data (Data Matrix, GS1-128, QR).
GS1_PREFIXES = ("]d2", "]C1", "]Q3", "]e0")

# AI -> (name, fixed data length or None, max length for variable, kind)
_AIS: dict[str, tuple[str, int | None, int, str]] = {
    "00": ("sscc", 18, 18, "digits_check"),
    "01": ("gtin", 14, 14, "digits_check"),
    "02": ("content_gtin", 14, 14, "digits_check"),
    "10": ("batch", None, 20, "text"),
    "11": ("production_date", 6, 6, "date"),
    "12": ("due_date", 6, 6, "date"),
    "13": ("packaging_date", 6, 6, "date"),
    "15": ("best_before", 6, 6, "date"),
    "16": ("sell_by", 6, 6, "date"),
    "17": ("expiry", 6, 6, "date"),
    "20": ("variant", 2, 2, "digits"),
    "21": ("serial", None, 20, "text"),
    "22": ("cpv", None, 20, "text"),
    "235": ("tpx", None, 28, "text"),
    "240": ("additional_id", None, 30, "text"),
    "241": ("customer_part_no", None, 30, "text"),
    "242": ("mto_variant", None, 6, "digits"),
    "250": ("secondary_serial", None, 30, "text"),
    "251": ("ref_to_source", None, 30, "text"),
    "30": ("count", None, 8, "digits"),
    "37": ("count_of_items", None, 8, "digits"),
    "400": ("order_number", None, 30, "text"),
    "410": ("ship_to_gln", 13, 13, "digits_check"),
    "414": ("location_gln", 13, 13, "digits_check"),
    "416": ("production_gln", 13, 13, "digits_check"),
    "422": ("origin_country", 3, 3, "digits"),
    "7003": ("expiry_time", 10, 10, "digits"),
    "8004": ("giai", None, 30, "text"),
    "8006": ("itip", 18, 18, "digits"),
    "90": ("internal", None, 30, "text"),
}
for _n in range(91, 100):
    _AIS[str(_n)] = (f"company_internal_{_n}", None, 90, "text")
for _p in ("310", "311", "312", "313", "320", "330"):  # measures: AI + implied decimals digit
    for _d in range(10):
        _AIS[f"{_p}{_d}"] = (f"measure_{_p}", 6, 6, "digits")
_GS1_CHARS = re.compile(r"[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]")


@dataclass(frozen=True, kw_only=True)
class Gs1Element:
    """One AI and its value (dates are turned into ISO text in ``value_iso``)."""

    ai: str
    name: str
    value: str
    value_iso: str = ""


@dataclass(frozen=True, kw_only=True)
class Gs1Message:
    """A GS1 element string split into elements."""

    elements: tuple[Gs1Element, ...]

    def get(self, name: str) -> str | None:
        """The value of the first element named ``name`` (``gtin``, ``batch``, ...)."""
        return next((e.value for e in self.elements if e.name == name), None)


def gs1_check_digit_ok(digits: str) -> bool:
    """Mod-10 check of a GTIN/SSCC/GLN (last digit is the check digit)."""
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def looks_like_gs1(text: str) -> bool:
    """True when the text announces GS1 data (symbology id, leading FNC1 or HRI brackets)."""
    return text.startswith((*GS1_PREFIXES, GS)) or bool(re.match(r"\(\d{2,4}\)", text))


def parse_gs1(text: str) -> Gs1Message:
    """Parse a raw (GS-separated) or HRI ``(01)...`` GS1 element string into typed elements."""
    if text.startswith("("):
        return _parse_hri(text)
    offset = 0
    for prefix in GS1_PREFIXES:
        if text.startswith(prefix):
            offset = len(prefix)
            break
    while offset < len(text) and text[offset] == GS:
        offset += 1
    if offset >= len(text):
        raise CodeError("GS1 element string is empty", text=text)
    elements: list[Gs1Element] = []
    pos = offset
    while pos < len(text):
        ai = _match_ai(text, pos)
        name, fixed, maxlen, kind = _AIS[ai]
        start = pos + len(ai)
        if fixed is not None:
            end = start + fixed
            if end > len(text):
                raise CodeError(
                    f"AI ({ai}) needs {fixed} characters", text=text, position=start + 1
                )
        else:
            gs_at = text.find(GS, start)
            end = len(text) if gs_at < 0 else gs_at
            if end - start > maxlen:
                raise CodeError(
                    f"AI ({ai}) value longer than {maxlen}", text=text, position=start + maxlen + 1
                )
        element = _element(text, ai, text[start:end], start, name=name, kind=kind)
        if any(e.ai == ai and e.value != element.value for e in elements):
            # GS1 forbids one AI with two values; keeping the first would drop the other
            raise CodeError(f"AI ({ai}) repeated with another value", text=text, position=pos + 1)
        elements.append(element)
        pos = end
        if pos < len(text) and text[pos] == GS:
            pos += 1
    return Gs1Message(elements=tuple(elements))


def _match_ai(text: str, pos: int) -> str:
    for n in (2, 3, 4):
        ai = text[pos : pos + n]
        if ai in _AIS:
            return ai
    raise CodeError(
        f"unknown application identifier {text[pos : pos + 4]!r}", text=text, position=pos + 1
    )


def _element(text: str, ai: str, value: str, start: int, *, name: str, kind: str) -> Gs1Element:
    if not value:
        raise CodeError(f"AI ({ai}) has an empty value", text=text, position=start + 1)
    for i, ch in enumerate(value):
        ok = ch.isdigit() if kind != "text" else bool(_GS1_CHARS.fullmatch(ch))
        if not ok:
            raise CodeError(
                f"AI ({ai}): character {ch!r} not allowed", text=text, position=start + i + 1
            )
    if kind == "digits_check" and not gs1_check_digit_ok(value):
        raise CodeError(f"AI ({ai}): check digit wrong", text=text, position=start + len(value))
    iso = _date_iso(text, ai, value, start) if kind == "date" else ""
    return Gs1Element(ai=ai, name=name, value=value, value_iso=iso)


def _date_iso(text: str, ai: str, value: str, start: int) -> str:
    # Century fixed at 20xx (GS1's sliding window needs "today"; parsers here are pure).
    year, month, day = 2000 + int(value[0:2]), int(value[2:4]), int(value[4:6])
    if not 1 <= month <= 12:
        raise CodeError(f"AI ({ai}): month {month} invalid", text=text, position=start + 3)
    if day == 0:  # GS1: day 00 means the last day of the month
        return f"{year:04d}-{month:02d}"
    if day > calendar.monthrange(year, month)[1]:
        raise CodeError(f"AI ({ai}): day {day} invalid", text=text, position=start + 5)
    return f"{year:04d}-{month:02d}-{day:02d}"


def _parse_hri(text: str) -> Gs1Message:
    parts = re.findall(r"\((\d{2,4})\)([^(]*)", text)
    if not parts or "".join(f"({a}){v}" for a, v in parts) != text:
        raise CodeError("malformed GS1 human-readable string", text=text)
    # Each bracket must hold exactly one known AI: "(999)abc" is not AI 99 with "9abc".
    pos = 1
    for ai, value in parts:
        if ai not in _AIS:
            raise CodeError(f"unknown application identifier ({ai})", text=text, position=pos + 1)
        fixed = _AIS[ai][1]
        if fixed is not None and len(value) != fixed:
            raise CodeError(
                f"AI ({ai}) needs {fixed} characters, got {len(value)}",
                text=text,
                position=pos + len(ai) + 2,
            )
        pos += len(ai) + 2 + len(value)
    raw = GS.join(f"{ai}{value}" for ai, value in parts)
    return parse_gs1(raw)
