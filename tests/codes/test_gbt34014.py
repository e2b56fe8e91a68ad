"""GB/T 34014 24-character and 19-character cascade codes."""

from __future__ import annotations

import pytest

from edge_agent.codes import parse_cascade_code, parse_pack_code, tables
from edge_agent.errors import CodeError

VALID = "001PBS1ABCDEFGA3A0000123"


def test_valid_code_fields() -> None:
    code = parse_pack_code(VALID)
    assert code.manufacturer == "001"
    assert code.product_type == "P" and code.product_level == "pack"
    assert code.battery_type_letter == "B" and code.battery_type == "lfp"
    assert code.spec == "S1"
    assert code.traceability == "ABCDEFG"
    assert code.production_date is not None
    assert code.production_date.raw == "A3A"
    assert code.production_date.iso == "2020-03-10"
    assert code.production_date.confidence == "confirmed"
    assert code.serial == "0000123"


def test_surrounding_whitespace_is_ignored() -> None:
    assert parse_pack_code(f"  {VALID}\n").code == VALID


@pytest.mark.parametrize(
    ("letter", "token"), [("B", "lfp"), ("E", "ncm"), ("Z", "other"), ("A", "unconfirmed:A")]
)
def test_battery_types(letter: str, token: str) -> None:
    assert parse_pack_code(VALID[:4] + letter + VALID[5:]).battery_type == token


@pytest.mark.parametrize(
    ("date", "iso"),
    [("7C9", "2017-12-09"), ("8BY", "2018-11-30"), ("F1J", "2025-01-18"), ("HAP", "2027-10-23")],
)
def test_dates(date: str, iso: str) -> None:
    parsed = parse_pack_code(VALID[:14] + date + VALID[17:]).production_date
    assert parsed is not None and parsed.iso == iso


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        (VALID[:23], 0, "must be 24 characters, got 23"),
        ("001XBS1ABCDEFGA3A0000123", 4, "product type 'X'"),
        ("001PHS1ABCDEFGA3A0000123", 5, "battery type 'H'"),
        ("001PBS1ABCDEFGA3A00001X3", 23, "serial character 'X'"),
        ("001PBS1ABCDEFGA3A0000000", 18, "serial 0000000"),
        ("001PBS1aBCDEFGA3A0000123", 8, "lower-case letter 'a'"),
        ("001PBS1AB-DEFGA3A0000123", 10, "character '-' not allowed"),
    ],
)
def test_each_violation_has_position_and_reason(text: str, position: int, reason: str) -> None:
    with pytest.raises(CodeError) as info:
        parse_pack_code(text)
    assert info.value.position == position
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("date", "iso", "confidence"),
    [
        ("A30", "2020-03-31", "extrapolated"),  # day 31: no source says how it is written
        ("F1Y", "2025-01-30", "confirmed"),
        ("G11", "2026-01-01", "confirmed"),
        ("S11", "2035-01-01", "extrapolated"),  # year letters after R are extrapolated
        ("Y5A", "2040-05-10", "extrapolated"),
    ],
)
def test_day_31_and_extrapolated_years_parse_with_the_date_confidence(
    date: str, iso: str, confidence: str
) -> None:
    code = parse_pack_code(VALID[:14] + date + VALID[17:])
    assert code.production_date is not None
    assert (code.production_date.iso, code.production_date.confidence) == (iso, confidence)
    assert code.code == VALID[:14] + date + VALID[17:]


@pytest.mark.parametrize(
    ("date", "problem"),
    [
        ("I3A", "position 15: year character 'I' has no known mapping"),
        ("A0A", "position 16: month character '0' not allowed"),
        ("A3I", "position 17: day character 'I' has no known mapping"),
        ("A2Y", "position 17: day 30 does not exist in 2020-02"),
        ("A40", "position 17: day 31 does not exist in 2020-04"),
    ],
)
def test_an_unreadable_date_never_costs_the_code(date: str, problem: str) -> None:
    code = parse_pack_code(VALID[:14] + date + VALID[17:])
    assert code.production_date is None
    assert code.date_problem.startswith(problem)
    assert code.manufacturer == "001" and code.serial == "0000123"


@pytest.mark.parametrize(("letter", "level"), [("P", "pack"), ("M", "module"), ("C", "cell")])
def test_product_level(letter: str, level: str) -> None:
    assert parse_pack_code(VALID[:3] + letter + VALID[4:]).product_level == level
    assert parse_cascade_code(f"03U{letter}E12B5T0001234RP").product_level == level


def test_cascade_code() -> None:
    code = parse_cascade_code("03UME12B5T0001234RP")
    assert code.manufacturer == "03U"
    assert code.product_type == "M"
    assert code.battery_type == "ncm"
    assert code.production_date is not None and code.production_date.iso == "2021-05-26"
    assert code.serial == "0001234"
    assert code.original_level == "P"


@pytest.mark.parametrize(
    ("text", "position"), [("03UME12B5T0001234XP", 18), ("03UME12B5T0001234RX", 19)]
)
def test_cascade_violations(text: str, position: int) -> None:
    with pytest.raises(CodeError) as info:
        parse_cascade_code(text)
    assert info.value.position == position


def test_unconfirmed_tables_are_flagged_and_consistent() -> None:
    assert tables.UNCONFIRMED is True
    assert tables.YEARS["A"] == 2020 and tables.YEARS["F"] == 2025 and tables.YEARS["R"] == 2034
    assert "I" not in tables.YEARS and "O" not in tables.YEARS
    assert sorted(tables.DAYS.values()) == list(range(1, 31))
    assert tables.DAYS_EXTRAPOLATED == {"0": 31} and not set(tables.DAYS_EXTRAPOLATED) & set(
        tables.DAYS
    )
    assert tables.MONTHS["C"] == 12
    assert set(tables.BATTERY_TYPES) <= tables.BATTERY_TYPE_LETTERS
