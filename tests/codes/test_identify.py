"""The dispatcher, LabelCode field conversion and fuzzing of every parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.codes import (
    parse_cascade_code,
    parse_gs1,
    parse_identifier,
    parse_iso15434,
    parse_pack_code,
    parse_passport,
    parse_strict,
)
from edge_agent.errors import CodeError
from edge_agent.model import LabelCode

GS, RS, EOT = "\x1d", "\x1e", "\x04"


@pytest.mark.parametrize(
    ("text", "kind", "key", "value"),
    [
        ("001PBS1ABCDEFGA3A0000123", "gbt34014", "production_date", "2020-03-10"),
        ("03UME12B5T0001234RP", "gbt34014_cascade", "original_level", "P"),
        ("https://batterypass.oem.eu/p/XY12", "passport", "identifier", "XY12"),
        (f"{GS}0109501101530003{GS}21S1", "gs1", "serial", "S1"),
        (f"[)>{RS}06{GS}SPACK1{RS}{EOT}", "iso15434", "06:S", "PACK1"),
        ("hello world", "text", None, None),
    ],
)
def test_dispatch(text: str, kind: str, key: str | None, value: str | None) -> None:
    parsed = parse_identifier(text)
    assert parsed.kind == kind
    fields = parsed.fields_as_text()
    if key is not None:
        assert fields[key] == value
    # The fields fit the event model as-is.
    code = LabelCode(symbology="QRCode", text=text, kind=parsed.kind, fields=fields)
    assert code.fields == fields


def test_gs1_hint_from_decoder() -> None:
    assert parse_identifier("0109501101530003", gs1_hint=True).kind == "gs1"
    assert parse_identifier("0109501101530003").kind == "text"


def test_malformed_pack_code_falls_back_to_text_with_problem() -> None:
    parsed = parse_identifier("001XBS1ABCDEFGA3A0000123")
    assert parsed.kind == "text"
    assert "product type 'X'" in parsed.problem
    assert parsed.fields_as_text() == {"problem": parsed.problem}


def test_strict_raises_the_specific_error() -> None:
    with pytest.raises(CodeError) as info:
        parse_strict("001PBS1ABCDEFGA3A00001X3")
    assert info.value.position == 23


FUZZ = settings(max_examples=300, deadline=None)
_alphabet = st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZa()[]>:/.-\x1d\x1e\x04 é")


@FUZZ
@given(st.one_of(st.text(), st.text(alphabet=_alphabet, max_size=60)), st.booleans())
def test_dispatch_never_raises(text: str, hint: bool) -> None:
    parsed = parse_identifier(text, gs1_hint=hint)
    assert parsed.kind in {"gbt34014", "gbt34014_cascade", "passport", "gs1", "iso15434", "text"}
    assert all(isinstance(v, str) for v in parsed.fields_as_text().values())


@FUZZ
@given(st.one_of(st.text(), st.text(alphabet=_alphabet, max_size=60)))
def test_parsers_raise_only_code_error(text: str) -> None:
    for parser in (
        parse_pack_code,
        parse_cascade_code,
        parse_gs1,
        parse_iso15434,
        parse_passport,
        parse_strict,
    ):
        try:
            parser(text)
        except CodeError as exc:
            assert 0 <= exc.position <= len(text) + 1


@FUZZ
@given(st.integers(0, 23), st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
def test_single_character_mutations(index: int, ch: str) -> None:
    text = "001PBS1ABCDEFGA3A0000123"
    mutated = text[:index] + ch + text[index + 1 :]
    try:
        code = parse_pack_code(mutated)
    except CodeError as exc:
        assert exc.position == index + 1 or (index in (14, 15) and exc.position == 17)
    else:
        assert code.code == mutated
