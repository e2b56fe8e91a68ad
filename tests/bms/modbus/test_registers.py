"""Register word helpers: word order, sign, floats, text."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.bms.modbus.registers import (
    decode_integer,
    float_to_words,
    int_to_words,
    is_not_implemented,
    join_words,
    text_to_words,
    words_to_float,
    words_to_text,
)


def test_word_order() -> None:
    assert join_words([0x0001, 0x0002]) == 0x00010002
    assert join_words([0x0001, 0x0002], little_word_first=True) == 0x00020001


def test_signed_types() -> None:
    assert decode_integer("int16", [0xFF9C]) == -100
    assert decode_integer("uint16", [0xFF9C]) == 65436
    assert decode_integer("int32", [0xFFFF, 0xFFFE]) == -2
    assert decode_integer("sunssf", [0xFFFD]) == -3


def test_float_and_text() -> None:
    assert words_to_float([0x4048, 0xF5C3]) == 3.140000104904175
    assert (
        words_to_float(float_to_words(3.5, little_word_first=True), little_word_first=True) == 3.5
    )
    assert words_to_text(text_to_words("BYD", 16)) == "BYD"
    assert words_to_text([0x5942, 0x0044], swap_bytes=True) == "BYD"


def test_not_implemented_sentinels() -> None:
    assert is_not_implemented("uint16", 0xFFFF)
    assert is_not_implemented("int16", -0x8000)
    assert is_not_implemented("uint32", 0xFFFFFFFF)
    assert is_not_implemented("acc32", 0)
    assert is_not_implemented("float32", math.nan)
    assert not is_not_implemented("uint16", 0)


@settings(max_examples=200, deadline=None)
@given(value=st.integers(-(2**31), 2**31 - 1), little=st.booleans())
def test_int32_round_trip(value: int, little: bool) -> None:
    words = int_to_words(value, 2, little_word_first=little)
    assert decode_integer("int32", words, little_word_first=little) == value
