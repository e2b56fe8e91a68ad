"""Nameplate text -> fields: the GB/T 34014 code and rated values from OCR'd lines (pure).

The code is accepted only when ``parse_pack_code`` / ``parse_cascade_code`` validates it and its
date characters map to a real date. OCR confuses O/0, I/1, S/5 and B/8: when the text as read
does not validate, candidates that swap those characters are tried, fewest swaps first, and a
candidate is kept only when it is the one valid reading with that few swaps (never a guess).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.codes.gbt34014 import CascadeCode, PackCode, parse_cascade_code, parse_pack_code
from edge_agent.errors import CodeError

#: Look-alike characters OCR swaps; each maps to its partner.
CONFUSIONS: dict[str, str] = {
    "O": "0",
    "0": "O",
    "I": "1",
    "1": "I",
    "S": "5",
    "5": "S",
    "B": "8",
    "8": "B",
}
_MAX_SWAPS = 4  # more swaps than this is not a reading any more
_SPLIT = re.compile(r"[^A-Za-z0-9 ]+")  # colons, CJK text, punctuation end a code candidate


@dataclass(frozen=True, kw_only=True)
class TextCode:
    """A GB/T 34014 code found in a text line."""

    code: str
    parsed: PackCode | CascadeCode
    line: int  # index of the line it was read from
    swaps: int  # look-alike characters changed to make it validate
    confidence: float  # line score, lowered by each swap


@dataclass(frozen=True, kw_only=True)
class TextField:
    """A rated value or name found in a text line."""

    name: str  # rated_voltage_v, rated_capacity_ah, rated_energy_kwh, mass_kg, chemistry, manufacturer
    value: str
    line: int
    confidence: float


def _parse(code: str) -> PackCode | CascadeCode | None:
    try:
        parsed: PackCode | CascadeCode = (
            parse_pack_code(code) if len(code) == 24 else parse_cascade_code(code)
        )
    except CodeError:
        return None
    return parsed if parsed.production_date is not None else None


def _validate(raw: str) -> tuple[str, PackCode | CascadeCode, int] | None:
    """The one valid reading of ``raw`` with the fewest look-alike swaps, or None."""
    raw = raw.upper()
    parsed = _parse(raw)
    if parsed is not None:
        return raw, parsed, 0
    spots = [i for i, ch in enumerate(raw) if ch in CONFUSIONS]
    for n in range(1, min(_MAX_SWAPS, len(spots)) + 1):
        found: dict[str, PackCode | CascadeCode] = {}
        for combo in itertools.combinations(spots, n):
            chars = list(raw)
            for i in combo:
                chars[i] = CONFUSIONS[chars[i]]
            cand = "".join(chars)
            p = _parse(cand)
            if p is not None:
                found[cand] = p
        if len(found) == 1:
            ((code, p),) = found.items()
            return code, p, n
        if found:  # two readings equally close: ambiguous, so none
            return None
    return None


def _windows(segment: str) -> list[str]:
    compact = segment.replace(" ", "")
    out = []
    for size in (24, 19):
        if len(compact) >= size:
            out.append(compact[-size:])  # "Code 001PBS..." : the code ends the segment
            out.append(compact[:size])  # "001PBS... 编码" : or starts it
    return list(dict.fromkeys(out))


def find_codes(lines: Sequence[str], scores: Sequence[float] | None = None) -> list[TextCode]:
    """Every distinct validated GB/T 34014 code in the lines (first occurrence kept)."""
    found: dict[str, TextCode] = {}
    for li, line in enumerate(lines):
        score = scores[li] if scores is not None else 1.0
        for segment in _SPLIT.split(line):
            results = {v[0]: v for w in _windows(segment) if (v := _validate(w)) is not None}
            if len(results) != 1:  # none, or two different codes from one segment
                continue
            code, parsed, swaps = next(iter(results.values()))
            found.setdefault(
                code,
                TextCode(
                    code=code,
                    parsed=parsed,
                    line=li,
                    swaps=swaps,
                    confidence=round(score * 0.85**swaps, 3),
                ),
            )
    return list(found.values())


_NUM = r"([0-9]+(?:[.,][0-9]+)?)"
_SEP = r"\s*[:：]?\s*"
_VALUES: tuple[tuple[str, str, str, float], ...] = (
    # name, label words, unit pattern, scale to the field's unit
    ("rated_voltage_v", r"额定电压|标称电压|rated\s*voltage|nominal\s*voltage", r"v\b", 1.0),
    ("rated_capacity_ah", r"额定容量|标称容量|rated\s*capacity|nominal\s*capacity", r"ah\b", 1.0),
    ("rated_energy_kwh", r"额定能量|标称能量|rated\s*energy|nominal\s*energy", r"kwh\b", 1.0),
    ("rated_energy_kwh", r"额定能量|标称能量|rated\s*energy|nominal\s*energy", r"wh\b", 0.001),
    ("mass_kg", r"重量|质量|净重|weight|mass", r"kg\b", 1.0),
)
_CHEMISTRY: tuple[tuple[str, str], ...] = (
    (r"磷酸铁锂|lifepo4|\blfp\b", "lfp"),
    (r"三元|\bncm\b|\bnmc\b", "ncm"),
    (r"\bnca\b|镍钴铝", "nca"),
    (r"锰酸锂|\blmo\b", "lmo"),
    (r"钛酸锂|\blto\b", "lto"),
    (r"钴酸锂|\blco\b", "lco"),
)
_MAKER = re.compile(
    r"(?:制造商|生产厂家|生产商|制造厂|manufacturer|made\s*by|producer)\s*[:：]\s*(.{2,80})",
    re.IGNORECASE,
)


def find_fields(lines: Sequence[str], scores: Sequence[float] | None = None) -> list[TextField]:
    """Rated voltage, capacity, energy, mass, chemistry and manufacturer from labelled lines."""
    found: dict[str, TextField] = {}

    def keep(name: str, value: str, li: int, conf: float) -> None:
        found.setdefault(
            name, TextField(name=name, value=value, line=li, confidence=round(conf, 3))
        )

    for li, line in enumerate(lines):
        score = scores[li] if scores is not None else 1.0
        low = line.lower()
        for name, words, unit, scale in _VALUES:
            m = re.search(rf"(?:{words}){_SEP}{_NUM}\s*{unit}", low)
            if m:
                value = float(m.group(1).replace(",", ".")) * scale
                keep(name, f"{value:g}", li, score)
        for pattern, token in _CHEMISTRY:
            if re.search(pattern, low):
                keep("chemistry", token, li, score)
                break
        m = _MAKER.search(line)
        if m:
            keep("manufacturer", m.group(1).strip(), li, score)
    return list(found.values())
