"""GS1 element strings, ISO/IEC 15434 envelopes and passport identifiers."""

from __future__ import annotations

import pytest

from edge_agent.codes import parse_gs1, parse_iso15434, parse_passport
from edge_agent.codes.gs1 import gs1_check_digit_ok
from edge_agent.errors import CodeError

GS, RS, EOT = "\x1d", "\x1e", "\x04"


def test_gs1_raw_element_string() -> None:
    msg = parse_gs1(f"]d2010950110153000311250131{GS}10LOT-42{GS}21SN0001{GS}17261231")
    assert msg.get("gtin") == "09501101530003"
    assert msg.get("production_date") == "250131"
    assert msg.elements[1].value_iso == "2025-01-31"
    assert msg.get("batch") == "LOT-42"
    assert msg.get("serial") == "SN0001"
    assert msg.elements[-1].value_iso == "2026-12-31"


def test_gs1_sample_from_zxing_set() -> None:
    # datamatrix-5/issue794-3-2: GTIN, serial, GS, expiry, batch
    msg = parse_gs1("010890381998765921Y2GNX9ZR37SE0DAAT436\x1d1731063010B")
    assert msg.get("gtin") == "08903819987659"
    assert msg.get("serial") == "Y2GNX9ZR37SE0DAAT436"
    assert msg.get("expiry") == "310630"
    assert msg.get("batch") == "B"


def test_gs1_hri_form_and_day_zero() -> None:
    msg = parse_gs1("(01)09501101530003(17)250200(10)A1")
    assert msg.elements[1].value_iso == "2025-02"
    assert msg.get("batch") == "A1"


def test_gs1_check_digit() -> None:
    assert gs1_check_digit_ok("09501101530003")
    with pytest.raises(CodeError) as info:
        parse_gs1(f"{GS}0109501101530004")
    assert info.value.position == 17
    assert "check digit" in info.value.reason


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        (f"{GS}01095011015300", 4, "needs 14"),
        (f"{GS}99", 0, "empty"),
        (f"{GS}0109501101530003{GS}88ABC", 19, "unknown application identifier"),
        (f"{GS}11251301", 6, "month 13"),
        (f"{GS}10" + "A" * 21, 24, "longer than 20"),
        (f"{GS}10AB\u00e9", 6, "not allowed"),
    ],
)
def test_gs1_errors(text: str, position: int, reason: str) -> None:
    with pytest.raises(CodeError) as info:
        parse_gs1(text)
    assert reason in info.value.reason
    if position:
        assert info.value.position == position


def test_iso15434_format06_and_05() -> None:
    text = f"[)>{RS}06{GS}P12345{GS}1TLOT7{GS}25SUN123{RS}05{GS}0109501101530003{RS}{EOT}"
    msg = parse_iso15434(text)
    assert [f.format_id for f in msg.formats] == ["06", "05"]
    assert [(e.identifier, e.value) for e in msg.formats[0].elements] == [
        ("P", "12345"),
        ("1T", "LOT7"),
        ("25S", "UN123"),
    ]
    assert msg.formats[1].elements[0].value == "09501101530003"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"[)>06{GS}P1{RS}{EOT}", "header"),
        (f"[)>{RS}06{GS}P1{RS}", "EOT"),
        (f"[)>{RS}6X{GS}P1{RS}{EOT}", "two digits"),
        (f"[)>{RS}06P1{RS}{EOT}", "GS expected"),
        (f"[)>{RS}06{GS}12{RS}{EOT}", "data identifier"),
        (f"[)>{RS}06{GS}P1{RS}{EOT}x", "after the EOT"),
    ],
)
def test_iso15434_errors(text: str, reason: str) -> None:
    with pytest.raises(CodeError) as info:
        parse_iso15434(text)
    assert reason in info.value.reason


def test_passport_urls_and_plain_ids() -> None:
    p = parse_passport("https://passport.example-oem.eu/battery/BP-2027-000042")
    assert (p.match, p.identifier) == ("keyword", "BP-2027-000042")
    assert p.host == "passport.example-oem.eu"
    dl = parse_passport("https://id.oem.com/01/09501101530003/21/PACK77?x=1")
    assert (dl.match, dl.gtin, dl.serial) == ("gs1_digital_link", "09501101530003", "PACK77")
    urn = parse_passport("urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e")
    assert urn.scheme == "urn"
    assert parse_passport("did:web:batterypass.example:pack:1").match == "did"


@pytest.mark.parametrize(
    "text", ["https://example.com/shop", "hello", "https://", "https://pass port/x", ""]
)
def test_not_passports(text: str) -> None:
    with pytest.raises(CodeError):
        parse_passport(text)
