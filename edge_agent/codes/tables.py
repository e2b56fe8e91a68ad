"""Character-to-meaning tables of GB/T 34014 that the reference marks UNCONFIRMED.

No official copy of GB/T 34014-2017 was available (docs/reference/standards.md section 1.1), so
every mapping below comes from secondary sources (a NIO test generator, a JSON decoder config,
the Catena-X regex) and may be wrong. They live here, and only here, so a correction is one edit.
Parsers report values derived from these tables as-is; callers that need certainty should keep
the raw character (the parsers always return it too).
"""

from __future__ import annotations

from typing import Final

#: True while the tables are not checked against the standard text.
UNCONFIRMED: Final = True

#: Position 5 battery type -> chemistry token. B and E agree in two sources, Z = "other".
#: A, C, D, F, G are allowed by the Catena-X regex ``[A-GZ]`` but their meaning is unknown:
#: the parser returns ``"unconfirmed:<letter>"`` for them.
BATTERY_TYPES: Final[dict[str, str]] = {"B": "lfp", "E": "ncm", "Z": "other"}
BATTERY_TYPE_LETTERS: Final = frozenset("ABCDEFGZ")

#: Position 15 year. 7..9 and A..F from NIO (A = 2020); H..R from a JSON config (no I, O, Q).
#: Digits 1..6 and letters after R follow the same VIN-style skip of I, O, Q, U, Z by
#: extrapolation only. A Kotlin decoder disagrees (A = 2021).
_YEAR_LETTERS: Final = "ABCDEFGHJKLMNPRSTVWXY"
YEARS: Final[dict[str, int]] = {
    **{str(d): 2010 + d for d in range(1, 10)},
    **{c: 2020 + i for i, c in enumerate(_YEAR_LETTERS)},
}
#: Year characters backed by at least one source (the rest are extrapolated). G = 2026 is in the
#: same JSON config; after R that config continues S, T, U, V (with U), so ours may be wrong there.
YEARS_SOURCED: Final = frozenset("789ABCDEFGHJKLMNPR")

#: Position 16 month: 1..9, A = 10, B = 11, C = 12 (NIO + regex; a Kotlin decoder conflicts).
MONTHS: Final[dict[str, int]] = {**{str(d): d for d in range(1, 10)}, "A": 10, "B": 11, "C": 12}

#: Position 17 day: 1..9 then letters without I, O, Q, U, Z (NIO). That gives 30 days (sourced).
_DAY_LETTERS: Final = "ABCDEFGHJKLMNPRSTVWXY"
DAYS: Final[dict[str, int]] = {
    **{str(d): d for d in range(1, 10)},
    **{c: 10 + i for i, c in enumerate(_DAY_LETTERS) if 10 + i <= 30},
}
#: How day 31 is written is in no source. The letter sequence has no letter left (the next one,
#: Z, is excluded like in VINs), and ``0`` is the one character the Catena-X day regex admits
#: that means nothing else, so ``0`` is read as day 31, and a date using it is "extrapolated".
DAYS_EXTRAPOLATED: Final[dict[str, int]] = {"0": 31}

#: Cascade-use (19-character) form: position 18 is always "R"; the meaning of R + P/M/C at
#: 18-19 is unconfirmed (read here as "re-coded" + the original product level).
CASCADE_MARK: Final = "R"
