"""The reconciled identity of the pack, kept apart from the BMS controller's (pure).

Only a GB/T 34014 code of product level P becomes ``pack_code``; module and cell codes read on
the label or from the BMS are kept as ``component_codes`` and flagged by a check. The BMS
controller's identification DIDs (UDS F18A/F18B/F18C, ...) live in ``readings.bms.identity.ecu``
and never fill the pack's manufacturer, production date or serial. The label's 7-digit daily
sequence is not a unique serial, so ``serial`` comes only from a source that gives one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import get_args

from edge_agent.bms.chemistry import resolve as resolve_chemistry
from edge_agent.codes.identify import parse_identifier
from edge_agent.model import (
    BmsReading,
    Check,
    ComponentCode,
    DateConfidence,
    LabelCode,
    PackIdentity,
    ProductLevel,
    Value,
)

PACK_KINDS = ("gbt34014", "gbt34014_cascade")
LEVELS = {"P": "pack", "M": "module", "C": "cell"}


def _level(code: LabelCode) -> str:
    return LEVELS.get(code.fields.get("product_type", "P"), "pack")


def pack_label_code(codes: tuple[LabelCode, ...]) -> LabelCode | None:
    """The label's pack-level GB/T 34014 code (24-char first, then the cascade form), if any."""
    for kind in PACK_KINDS:
        for code in codes:
            if code.kind == kind and _level(code) == "pack":
                return code
    return None


def passport_code(codes: tuple[LabelCode, ...]) -> LabelCode | None:
    """The label's EU battery-passport identifier, if any."""
    return next((c for c in codes if c.kind == "passport"), None)


def _text(value: Value | None) -> str | None:
    if value is None or isinstance(value.value, bool):
        return None
    return str(value.value).strip() or None


def _number(value: Value | None) -> float | None:
    if value is None or isinstance(value.value, bool | str):
        return None
    number = float(value.value)
    return number if number > 0 else None


def _bms_texts(bms: BmsReading) -> Iterator[tuple[str, str]]:
    """(method tag, text) of every BMS identifier that could carry a GB/T 34014 code."""
    ident = bms.identity
    for value in (ident.serial, ident.model, ident.part_number):
        text = _text(value)
        if text and value is not None:
            yield value.method or "bms", text
    for key, value in sorted((ident.other_ids or {}).items()):
        text = _text(value)
        if text:
            yield value.method or key, text


def is_pack_code(text: str) -> bool:
    """True when ``text`` parses as a GB/T 34014 code of product level P (pack)."""
    if len(text) not in (19, 24):
        return False
    parsed = parse_identifier(text)
    return parsed.kind in PACK_KINDS and getattr(parsed.value, "product_level", None) == "pack"


def _bms_codes(bms: BmsReading | None) -> list[tuple[str, str, str]]:
    """(code, product level, method) of the GB/T 34014 codes the BMS reported."""
    if bms is None:
        return []
    found: list[tuple[str, str, str]] = []
    for method, text in _bms_texts(bms):
        if len(text) not in (19, 24):
            continue
        parsed = parse_identifier(text)
        level = getattr(parsed.value, "product_level", None)
        if parsed.kind in PACK_KINDS and level is not None:
            found.append((text, str(level), method))
    return found


def component_codes(
    codes: tuple[LabelCode, ...], bms: BmsReading | None
) -> tuple[ComponentCode, ...]:
    """Module and cell codes read on the label or from the BMS, each once."""
    out: dict[str, ComponentCode] = {}
    for code in codes:
        level = _level(code)
        if code.kind in PACK_KINDS and level in ("module", "cell"):
            out.setdefault(code.text, _component(code.text, level, "label"))
    for text, level, method in _bms_codes(bms):
        if level in ("module", "cell"):
            out.setdefault(text, _component(text, level, method))
    return tuple(out.values())


def _component(code: str, level: str, source: str) -> ComponentCode:
    assert level in get_args(ProductLevel)
    return ComponentCode(code=code, product_level=level, source=source)  # type: ignore[arg-type]


def identity_checks(label: LabelCode | None, components: tuple[ComponentCode, ...]) -> list[Check]:
    """Flag module and cell codes: kept as component codes, never taken for the pack code."""
    if not components:
        return []
    listed = ", ".join(f"{c.product_level} {c.code} ({c.source})" for c in components)
    if label is None:
        detail = f"only module/cell codes read, no pack-level code: {listed}"
    else:
        detail = f"kept as component codes, not as the pack code {label.text}: {listed}"
    return [Check(name="label.component_codes", status="warn", detail=detail)]


def _chemistry(label_chem: str | None, bms_chem: str | None) -> tuple[str | None, str | None]:
    """The one chemistry rule (bms.chemistry.resolve): an unconfirmed label never beats the BMS."""
    chem, source = resolve_chemistry(label_chem, bms_chem)
    return chem, source or None


def _date(
    fields: Mapping[str, str], bms_date: str | None
) -> tuple[str | None, DateConfidence | None, str | None]:
    label_date = fields.get("production_date")
    confidence = fields.get("production_date_confidence", "confirmed")
    if label_date and bms_date and label_date == bms_date[:10]:
        return label_date, "confirmed", "both"  # a second source agrees
    if label_date and (confidence == "confirmed" or not bms_date):
        return label_date, "extrapolated" if confidence == "extrapolated" else "confirmed", "label"
    if bms_date:  # the BMS states its date outright: no letter table involved
        return bms_date[:10], "confirmed", "bms"
    return None, None, None


def pack_identity(
    label: LabelCode | None,
    passport: LabelCode | None,
    bms: BmsReading | None,
    *,
    codes: tuple[LabelCode, ...] = (),
    manufacturers: Mapping[str, tuple[str, ...]] | None = None,
    rated_energy_kwh: float | None = None,
) -> PackIdentity:
    """Assemble the pack's identity; ``bms`` is None when the BMS could not be read."""
    fields = label.fields if label else {}
    ident = bms.identity if bms else None
    source: dict[str, str] = {}

    pack_code, code_kind, level = None, None, None
    if label is not None:
        pack_code, code_kind, level = label.text, label.kind, "pack"
        source["pack_code"] = "label"
    else:
        bms_pack = next(((t, m) for t, lvl, m in _bms_codes(bms) if lvl == "pack"), None)
        if bms_pack is not None:
            pack_code, level = bms_pack[0], "pack"
            code_kind = "gbt34014" if len(bms_pack[0]) == 24 else "gbt34014_cascade"
            source["pack_code"] = "bms"

    maker_code = fields.get("manufacturer")
    if maker_code:
        source["manufacturer_code"] = "label"
    maker_name = _text(ident.manufacturer) if ident else None
    if maker_name:
        source["manufacturer_name"] = "bms"
    elif maker_code and (manufacturers or {}).get(maker_code):
        maker_name = (manufacturers or {})[maker_code][0]
        source["manufacturer_name"] = "site"
    if maker_name:
        source["manufacturer"] = source["manufacturer_name"]

    chem, chem_source = _chemistry(
        fields.get("battery_type"), _text(ident.battery_type) if ident else None
    )
    if chem_source:
        source["battery_type"] = chem_source

    made, confidence, made_source = _date(fields, _text(ident.production_date) if ident else None)
    if made_source:
        source["production_date"] = made_source

    serial = _unique_serial(ident.serial if ident else None, passport)
    if serial is not None:
        source["serial"] = serial[1]

    vin = _text(ident.vin) if ident else None
    if vin:
        source["vin"] = "bms"
    capacity = _number(ident.rated_capacity) if ident else None
    voltage = _number(ident.rated_voltage) if ident else None
    for name, number in (
        ("rated_capacity_ah", capacity),
        ("nominal_voltage_v", voltage),
        ("rated_energy_kwh", rated_energy_kwh),
    ):
        if number is not None:
            source[name] = "bms"
    return PackIdentity(
        pack_code=pack_code,
        code_kind=code_kind,
        passport_id=passport.text if passport else None,
        manufacturer=maker_name,
        battery_type=chem,
        production_date=made,
        serial=serial[0] if serial else None,
        vin=vin,
        rated_energy_kwh=round(rated_energy_kwh, 3) if rated_energy_kwh is not None else None,
        source=source,
        product_level=level,  # type: ignore[arg-type]
        manufacturer_code=maker_code,
        manufacturer_name=maker_name,
        rated_capacity_ah=round(capacity, 3) if capacity is not None else None,
        nominal_voltage_v=round(voltage, 3) if voltage is not None else None,
        production_date_confidence=confidence,
        component_codes=component_codes(codes, bms) or None,
    )


def _unique_serial(bms_serial: Value | None, passport: LabelCode | None) -> tuple[str, str] | None:
    """The pack's serial from a source that gives a unique one: the BMS's pack serial (not a
    GB/T 34014 code, which is the code) or the passport's serial."""
    text = _text(bms_serial)
    if text and not (len(text) in (19, 24) and parse_identifier(text).kind in PACK_KINDS):
        return text, "bms"
    if passport is not None and passport.fields.get("serial"):
        return passport.fields["serial"], "passport"
    return None
