"""Unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters with a check character.

Layout: registration authority (1), entity type (1), administrative division (6 digits),
organisation code (9, GB 11714), check character (1). The character set is the digits and the
capital letters without I, O, S, V and Z; the check character is 31 - (sum of value x weight
mod 31) over the first 17 characters, with 31 written as ``0``.
"""

from __future__ import annotations

from edge_agent.errors import CodeError

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_VALUE = {c: i for i, c in enumerate(CHARSET)}


def check_character(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def parse_uscc(text: str) -> str:
    """Validate a unified social credit code; CodeError names position and reason."""
    code = text.strip().upper()
    if len(code) != 18:
        raise CodeError(
            f"a unified social credit code has 18 characters, got {len(code)}", text=text
        )
    for i, ch in enumerate(code, start=1):
        if ch not in _VALUE:
            raise CodeError(
                f"character {ch!r} not allowed: digits and capital letters without I, O, S, V, Z",
                text=text,
                position=i,
            )
    if not code[2:8].isdigit():
        raise CodeError(
            "the administrative division code (3-8) must be digits", text=text, position=3
        )
    expected = check_character(code[:17])
    if code[17] != expected:
        raise CodeError(
            f"check character {code[17]!r} does not match (expected {expected!r})",
            text=text,
            position=18,
        )
    return code
