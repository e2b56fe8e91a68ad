"""Unified social credit codes (GB 32100): 18 characters with a check character."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.codes.uscc import CHARSET, check_character, parse_uscc
from edge_agent.errors import CodeError

# published codes of large enterprises (their check characters are the ones printed)
REAL = ["91350100M000100Y43", "91110000600037341L", "91440300708461136T", "91310000717866186P"]


@pytest.mark.parametrize("code", REAL)
def test_published_codes_pass(code: str) -> None:
    assert parse_uscc(code) == code
    assert parse_uscc(f" {code.lower()} ") == code


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("91350100M000100Y4", 0, "18 characters, got 17"),
        ("91350100M000100Y44", 18, "check character '4' does not match (expected '3')"),
        ("91350100M0001O0Y43", 14, "character 'O' not allowed"),
        ("913501A0M000100Y43", 3, "administrative division"),
    ],
)
def test_bad_codes_name_position_and_reason(text: str, position: int, reason: str) -> None:
    with pytest.raises(CodeError) as info:
        parse_uscc(text)
    assert info.value.position == position
    assert reason in info.value.reason


@given(st.text(alphabet=CHARSET, min_size=17, max_size=17))
def test_any_body_with_its_check_character_passes_and_a_changed_one_fails(body: str) -> None:
    body = body[:2] + "350100" + body[8:]
    check = check_character(body)
    assert parse_uscc(body + check) == body + check
    wrong = CHARSET[(CHARSET.index(check) + 1) % len(CHARSET)]
    with pytest.raises(CodeError):
        parse_uscc(body + wrong)


@given(st.text(max_size=40))
def test_never_crashes(text: str) -> None:
    try:
        parse_uscc(text)
    except CodeError:
        pass
