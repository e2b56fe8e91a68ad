"""GB/T 34014-2017 traction-battery codes: the 24-character code and the 19-character form."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from edge_agent.codes import tables
from edge_agent.errors import CodeError

PRODUCT_TYPES = {"P": "pack", "M": "module", "C": "cell"}
ProductLevel = Literal["pack", "module", "cell"]
#: "confirmed": every date character is backed by a source (tables.py, itself unconfirmed
#: against the standard text); "extrapolated": a year letter or day 31 read by extrapolation.
DateConfidence = Literal["confirmed", "extrapolated"]
_ALNUM = re.compile(r"[A-Z0-9]")


@dataclass(frozen=True, kw_only=True)
class ProductionDate:
    """Production date from the three date characters (raw characters kept)."""

    raw: str
    year: int
    month: int
    day: int
    confidence: DateConfidence = "confirmed"

    @property
    def iso(self) -> str:
        """ISO 8601 date text."""
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"


@dataclass(frozen=True, kw_only=True)
class PackCode:
    """A parsed 24-character GB/T 34014 code."""

    code: str
    manufacturer: str
    product_type: str  # "P", "M", "C"
    battery_type_letter: str
    battery_type: str  # chemistry token, or "unconfirmed:<letter>"
    spec: str
    traceability: str
    production_date: ProductionDate | None  # None when the date characters cannot be read
    serial: str  # the 7-digit sequence within the production day: not unique on its own
    date_problem: str = ""  # why production_date is None

    @property
    def product_level(self) -> ProductLevel:
        """``pack``, ``module`` or ``cell``."""
        return _level(self.product_type)


@dataclass(frozen=True, kw_only=True)
class CascadeCode:
    """A parsed 19-character cascade-use (re-coded) GB/T 34014 code."""

    code: str
    manufacturer: str
    product_type: str
    battery_type_letter: str
    battery_type: str
    spec: str
    production_date: ProductionDate | None
    serial: str
    original_level: str  # the P/M/C after the "R" mark (meaning unconfirmed)
    date_problem: str = ""

    @property
    def product_level(self) -> ProductLevel:
        """``pack``, ``module`` or ``cell`` of the re-coded product."""
        return _level(self.product_type)


def _level(letter: str) -> ProductLevel:
    level = PRODUCT_TYPES[letter]
    assert level in ("pack", "module", "cell")
    return level  # type: ignore[return-value]


def _fail(text: str, position: int, reason: str) -> CodeError:
    return CodeError(reason, text=text, position=position)


def _check_chars(text: str) -> None:
    for i, ch in enumerate(text, start=1):
        if ch.islower() and ch.isascii():
            raise _fail(text, i, f"lower-case letter {ch!r}: codes use upper-case letters only")
        if not _ALNUM.fullmatch(ch):
            raise _fail(text, i, f"character {ch!r} not allowed: digits and A-Z only")


def _battery_type(text: str, position: int) -> tuple[str, str]:
    letter = text[position - 1]
    if letter not in tables.BATTERY_TYPE_LETTERS:
        raise _fail(text, position, f"battery type {letter!r} not allowed: must be A-G or Z")
    return letter, tables.BATTERY_TYPES.get(letter, f"unconfirmed:{letter}")


def _product_type(text: str, position: int) -> str:
    letter = text[position - 1]
    if letter not in PRODUCT_TYPES:
        raise _fail(text, position, f"product type {letter!r} not allowed: must be P, M or C")
    return letter


def _date(text: str, position: int) -> tuple[ProductionDate | None, str]:
    """The date, or None and why: the date tables are unconfirmed, so a date that cannot be
    read never costs the pack its code."""
    y, m, d = text[position - 1], text[position], text[position + 1]
    days = {**tables.DAYS, **tables.DAYS_EXTRAPOLATED}
    if y not in tables.YEARS:
        return None, f"position {position}: year character {y!r} has no known mapping"
    if m not in tables.MONTHS:
        return None, f"position {position + 1}: month character {m!r} not allowed: 1-9, A-C"
    if d not in days:
        return None, f"position {position + 2}: day character {d!r} has no known mapping"
    year, month, day = tables.YEARS[y], tables.MONTHS[m], days[d]
    try:
        dt.date(year, month, day)
    except ValueError:
        return None, f"position {position + 2}: day {day} does not exist in {year:04d}-{month:02d}"
    sourced = y in tables.YEARS_SOURCED and d in tables.DAYS
    confidence: DateConfidence = "confirmed" if sourced else "extrapolated"
    return ProductionDate(raw=y + m + d, year=year, month=month, day=day, confidence=confidence), ""


def _serial(text: str, position: int) -> str:
    serial = text[position - 1 : position + 6]
    for i, ch in enumerate(serial):
        if not ch.isdigit():
            raise _fail(text, position + i, f"serial character {ch!r} not allowed: digits only")
    if serial == "0000000":
        raise _fail(text, position, "serial 0000000 not allowed: serials start at 1")
    return serial


def _prepare(text: str, length: int, what: str) -> str:
    code = text.strip()
    if len(code) != length:
        raise _fail(text, 0, f"{what} must be {length} characters, got {len(code)}")
    _check_chars(code)
    return code


def parse_pack_code(text: str) -> PackCode:
    """Parse and validate a 24-character GB/T 34014 code; CodeError names position and reason."""
    code = _prepare(text, 24, "GB/T 34014 code")
    ptype = _product_type(code, 4)
    letter, chem = _battery_type(code, 5)
    date, date_problem = _date(code, 15)
    serial = _serial(code, 18)
    return PackCode(
        code=code,
        manufacturer=code[0:3],
        product_type=ptype,
        battery_type_letter=letter,
        battery_type=chem,
        spec=code[5:7],
        traceability=code[7:14],
        production_date=date,
        serial=serial,
        date_problem=date_problem,
    )


def parse_cascade_code(text: str) -> CascadeCode:
    """Parse the 19-character cascade-use form: mfr+type+chem+spec+date+serial+'R'+[PMC]."""
    code = _prepare(text, 19, "cascade-use code")
    ptype = _product_type(code, 4)
    letter, chem = _battery_type(code, 5)
    date, date_problem = _date(code, 8)
    serial = _serial(code, 11)
    if code[17] != tables.CASCADE_MARK:
        raise _fail(code, 18, f"cascade mark {code[17]!r} not allowed: must be 'R'")
    original = _product_type(code, 19)
    return CascadeCode(
        code=code,
        manufacturer=code[0:3],
        product_type=ptype,
        battery_type_letter=letter,
        battery_type=chem,
        spec=code[5:7],
        production_date=date,
        serial=serial,
        original_level=original,
        date_problem=date_problem,
    )
