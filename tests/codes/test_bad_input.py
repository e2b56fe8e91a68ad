"""Codes that used to be misread: an unknown HRI AI, repeated identifiers (issue 15)."""

from __future__ import annotations

import json

import pytest

from edge_agent.cli import main
from edge_agent.codes.gs1 import GS, parse_gs1
from edge_agent.codes.iso15434 import parse_iso15434
from edge_agent.errors import CodeError

RS, EOT = "\x1e", "\x04"


def test_hri_unknown_ai_is_not_a_shorter_one() -> None:
    with pytest.raises(CodeError, match=r"unknown application identifier \(999\)"):
        parse_gs1("(999)abc")


def test_hri_fixed_length_must_fit_its_bracket() -> None:
    with pytest.raises(CodeError, match=r"AI \(11\) needs 6 characters"):
        parse_gs1("(11)2501011(10)A")
    assert parse_gs1("(11)250101(10)A").get("batch") == "A"


def test_cli_rejects_999(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["code", "parse", "(999)abc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "unknown application identifier (999)" in json.loads(err[0])["error"]


def test_repeated_data_identifier_is_an_error() -> None:
    text = f"[)>{RS}06{GS}SABC{GS}SXYZ{RS}{EOT}"
    with pytest.raises(CodeError, match="data identifier S repeated"):
        parse_iso15434(text)
    ok = parse_iso15434(f"[)>{RS}06{GS}SABC{GS}1PXYZ{RS}{EOT}")
    assert [e.identifier for e in ok.formats[0].elements] == ["S", "1P"]


def test_repeated_gs1_ai_with_another_value_is_an_error() -> None:
    with pytest.raises(CodeError, match=r"AI \(10\) repeated"):
        parse_gs1(f"10A{GS}10B")
