"""Pack codes: GB/T 34014 codes, EU battery-passport identifiers, GS1 and ISO/IEC 15434 (pure)."""

from edge_agent.codes.gbt34014 import (
    CascadeCode,
    PackCode,
    ProductionDate,
    parse_cascade_code,
    parse_pack_code,
)
from edge_agent.codes.gs1 import Gs1Element, Gs1Message, parse_gs1
from edge_agent.codes.identify import IDENTITY_KINDS, ParsedCode, parse_identifier, parse_strict
from edge_agent.codes.iso15434 import Iso15434Message, parse_iso15434
from edge_agent.codes.passport import PassportId, parse_passport

__all__ = [
    "IDENTITY_KINDS",
    "CascadeCode",
    "Gs1Element",
    "Gs1Message",
    "Iso15434Message",
    "PackCode",
    "ParsedCode",
    "PassportId",
    "ProductionDate",
    "parse_cascade_code",
    "parse_gs1",
    "parse_identifier",
    "parse_iso15434",
    "parse_pack_code",
    "parse_passport",
    "parse_strict",
]
