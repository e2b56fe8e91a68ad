"""Raw register words to numbers and text: the shared low level of SunSpec and register maps."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

# Sentinels SunSpec uses for "not implemented" (also common in vendor maps).
NOT_IMPLEMENTED = {
    "uint16": 0xFFFF,
    "enum16": 0xFFFF,
    "bitfield16": 0xFFFF,
    "int16": -0x8000,
    "sunssf": -0x8000,
    "uint32": 0xFFFFFFFF,
    "enum32": 0xFFFFFFFF,
    "bitfield32": 0xFFFFFFFF,
    "int32": -0x80000000,
    "uint64": 0xFFFFFFFFFFFFFFFF,
    "int64": -0x8000000000000000,
    "acc16": 0,
    "acc32": 0,
    "acc64": 0,
}


def join_words(words: Sequence[int], *, little_word_first: bool = False) -> int:
    """Combine 16-bit words into one unsigned integer (high word first unless told)."""
    ordered = list(reversed(words)) if little_word_first else list(words)
    value = 0
    for word in ordered:
        value = (value << 16) | (word & 0xFFFF)
    return value


def to_signed(value: int, bits: int) -> int:
    """Two's complement of an unsigned ``bits``-wide integer."""
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def words_to_text(words: Sequence[int], *, swap_bytes: bool = False) -> str:
    """ASCII/UTF-8 text packed two characters per register, NUL and space padding removed."""
    raw = bytearray()
    for word in words:
        high, low = (word >> 8) & 0xFF, word & 0xFF
        raw.extend((low, high) if swap_bytes else (high, low))
    text = bytes(raw).split(b"\x00", 1)[0]
    return text.decode("utf-8", errors="replace").strip()


def words_to_float(words: Sequence[int], *, little_word_first: bool = False) -> float:
    """IEEE 754 float32/float64 from 2 or 4 words."""
    raw = join_words(words, little_word_first=little_word_first)
    fmt = ">f" if len(words) == 2 else ">d"
    size = 4 if len(words) == 2 else 8
    return float(struct.unpack(fmt, raw.to_bytes(size, "big"))[0])


def decode_integer(ptype: str, words: Sequence[int], *, little_word_first: bool = False) -> int:
    """Integer value of an integer-like SunSpec point type (signedness from the type name)."""
    value = join_words(words, little_word_first=little_word_first)
    if ptype.startswith("int") or ptype == "sunssf":
        value = to_signed(value, 16 * len(words))
    return value


def is_not_implemented(ptype: str, value: int | float | str) -> bool:
    """True when ``value`` is the not-implemented sentinel of ``ptype``."""
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return value == ""
    sentinel = NOT_IMPLEMENTED.get(ptype)
    return sentinel is not None and value == sentinel


def text_to_words(text: str, size: int) -> list[int]:
    """Pack text into ``size`` registers, NUL padded (used by the simulators)."""
    raw = text.encode("utf-8")[: size * 2].ljust(size * 2, b"\x00")
    return [(raw[i] << 8) | raw[i + 1] for i in range(0, size * 2, 2)]


def int_to_words(value: int, size: int, *, little_word_first: bool = False) -> list[int]:
    """Split an integer (negative allowed) into ``size`` 16-bit words."""
    value &= (1 << (16 * size)) - 1
    words = [(value >> (16 * (size - 1 - i))) & 0xFFFF for i in range(size)]
    return list(reversed(words)) if little_word_first else words


def float_to_words(value: float, size: int = 2, *, little_word_first: bool = False) -> list[int]:
    """IEEE 754 float32 (size 2) or float64 (size 4) as words."""
    raw = struct.pack(">f" if size == 2 else ">d", value)
    return int_to_words(int.from_bytes(raw, "big"), size, little_word_first=little_word_first)
