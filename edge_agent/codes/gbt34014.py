"""GB/T 34014-2017 traction-battery codes: the 24-character code and the 19-character form."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from edge_agent.codes import tables
from edge_agent.errors import CodeError

PRODUCT_TYPES = {"P": "pack", "M": "module", "C": "cell"}
_ALNUM = re.compile(r"[A-Z0-9]")


@dataclass(frozen=True, kw_only=True)
class ProductionDate:
    """Production date from the three date characters (raw characters kept)."""

    raw: str
    year: int
    month: int
    day: int

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
    production_date: ProductionDate
    serial: str

    @property
    def product_level(self) -> str:
        """``pack``, ``module`` or ``cell``."""
        return PRODUCT_TYPES[self.product_type]


@dataclass(frozen=True, kw_only=True)
class CascadeCode:
    """A parsed 19-character cascade-use (re-coded) GB/T 34014 code."""

    code: str
    manufacturer: str
    product_type: str
    battery_type_letter: str
    battery_type: str
    spec: str
    production_date: ProductionDate
    serial: str
    original_level: str  # the P/M/C after the "R" mark (meaning unconfirmed)


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


def _date(text: str, position: int) -> ProductionDate:
    y, m, d = text[position - 1], text[position], text[position + 1]
    if y not in tables.YEARS:
        raise _fail(text, position, f"year character {y!r} has no known mapping")
    if m not in tables.MONTHS:
        raise _fail(text, position + 1, f"month character {m!r} not allowed: 1-9, A-C")
    if d not in tables.DAYS:
        raise _fail(text, position + 2, f"day character {d!r} has no known mapping")
    year, month, day = tables.YEARS[y], tables.MONTHS[m], tables.DAYS[d]
    try:
        dt.date(year, month, day)
    except ValueError:
        raise _fail(
            text, position + 2, f"day {day} does not exist in {year:04d}-{month:02d}"
        ) from None
    return ProductionDate(raw=y + m + d, year=year, month=month, day=day)


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
    date = _date(code, 15)
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
    )


def parse_cascade_code(text: str) -> CascadeCode:
    """Parse the 19-character cascade-use form: mfr+type+chem+spec+date+serial+'R'+[PMC]."""
    code = _prepare(text, 19, "cascade-use code")
    ptype = _product_type(code, 4)
    letter, chem = _battery_type(code, 5)
    date = _date(code, 8)
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
    )
