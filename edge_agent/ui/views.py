"""From the station's data to what a template shows, in the page's language (no I/O)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edge_agent.model import (
    BmsReading,
    IdentificationEvent,
    LabelReading,
    SensorReading,
    Value,
    WeightReading,
)
from edge_agent.ui.bench import PackRecord
from edge_agent.ui.i18n import N_, Catalog
from edge_agent.ui.words import (
    CHECK_STATUS,
    CHECKS,
    CHEMISTRY,
    DISPOSITION,
    OBSERVATION_WORDS,
    READING_STATUS,
    SENTENCES,
    SOURCES,
    TRANSPORT,
    reason_text,
    word,
)

# colour classes and icons: colour is never the only cue (the word and the icon say it too)
TONE = {"normal": "ok", "damaged_defective": "warn", "critical": "bad", "undiagnosable": "warn"}
ICON = {"ok": "✔", "warn": "▲", "bad": "✖", "info": "●"}
CHECK_TONE = {"pass": "ok", "warn": "warn", "fail": "bad", "skip": "info"}
READING_TONE = {"ok": "ok", "partial": "warn", "failed": "bad", "absent": "info", "waiting": "info"}


@dataclass(frozen=True)
class Line:
    """One translated line; ``source_text`` marks signed text shown as it is (not translated)."""

    text: str
    source_text: bool = False
    tone: str = "info"


@dataclass(frozen=True)
class SourceView:
    """One source's progress line."""

    name: str
    title: str
    status: str
    status_word: str
    tone: str
    facts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outline:
    """The photo and the decoded codes' corners, for an SVG overlay."""

    width: int
    height: int
    polygons: list[str]


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a JPEG's SOF segment (None when not found)."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def outline(photo: bytes | None, label: LabelReading | None) -> Outline | None:
    """Where the decoded codes are in the photo."""
    if not photo:
        return None
    size = jpeg_size(photo)
    if size is None:
        return None
    polygons = []
    for code in label.codes if label is not None else ():
        if len(code.position) >= 3:
            polygons.append(" ".join(f"{x},{y}" for x, y in code.position))
    return Outline(width=size[0], height=size[1], polygons=polygons)


def _v(value: Value | None, cat: Catalog, digits: int = 1) -> str | None:
    if value is None or value.quality is not None:
        return None
    if isinstance(value.value, bool) or not isinstance(value.value, int | float):
        return str(value.value)
    unit = f" {value.unit}" if value.unit else ""
    return cat.number(float(value.value), digits) + unit


def source_view(name: str, status: str, reading: object, cat: Catalog) -> SourceView:
    """The progress line of one source."""
    _ = cat.gettext
    facts: list[str] = []
    if isinstance(reading, BmsReading):
        st = reading.state
        for label, value, digits in (
            (N_("Voltage"), st.pack_voltage, 1),
            (N_("SOC"), st.soc, 0),
            (N_("SOH"), st.soh, 0),
            (N_("Max. temperature"), st.temperature_max, 1),
        ):
            text = _v(value, cat, digits)
            if text is not None:
                facts.append(f"{_(label)} {text}")
        mn, mx = _v(st.cell_voltage_min, cat, 3), _v(st.cell_voltage_max, cat, 3)
        if mn and mx:
            cells = _(N_("Cells"))
            facts.append(f"{cells} {mn} – {mx}")
    elif isinstance(reading, LabelReading):
        facts.extend(code.text for code in reading.codes[:2])
    elif isinstance(reading, WeightReading) and reading.mass_kg is not None:
        settled = _(N_("settled")) if reading.stable else _(N_("settling"))
        facts.append(f"{cat.number(reading.mass_kg, 1)} kg, {settled}")
    elif isinstance(reading, SensorReading):
        if reading.temperatures_c:
            bench = _(N_("Bench"))
            facts.append(f"{bench} {cat.number(max(reading.temperatures_c), 1)} °C")
        if reading.gas_alarm:
            facts.append(_(N_("gas alarm")))
        elif reading.gas_level is not None:
            gas = _(N_("Gas"))
            facts.append(f"{gas} {cat.number(reading.gas_level * 100, 0)} %")
    return SourceView(
        name=name,
        title=word(SOURCES, name, _),
        status=status,
        status_word=word(READING_STATUS, status, _),
        tone=READING_TONE.get(status, "info"),
        facts=facts,
    )


def card(event: IdentificationEvent, cat: Catalog) -> dict[str, Any]:
    """The result card of one event."""
    _ = cat.gettext
    t = event.triage
    reasons = []
    for sentence in t.reasons:
        text, known = reason_text(sentence, _)
        reasons.append(Line(text=text, source_text=not known))
    next_step = None
    if t.next_step:
        text, known = reason_text(t.next_step, _)
        next_step = Line(text=text, source_text=not known)
    checks = []
    for check in event.checks:
        tone = CHECK_TONE.get(check.status, "info")
        checks.append(
            {
                "name": word(CHECKS, check.name, _),
                "status": word(CHECK_STATUS, check.status, _),
                "tone": tone,
                "icon": ICON[tone],
                "detail": check.detail,
            }
        )
    observed = []
    by_what = {o.what: o.by for o in (event.intake.observations or ())} if event.intake else {}
    for token in event.observations:
        observed.append({"word": word(OBSERVATION_WORDS, token, _), "by": by_what.get(token)})
    pack = event.pack
    tone = TONE.get(t.transport_class, "info")
    moment = datetime.fromisoformat(event.clock.utc.replace("Z", "+00:00"))
    corrections = [
        {
            "name": c.name,
            "value": c.value,
            "previous": c.previous or "",
            "reason": c.reason,
            "by": c.by or "",
        }
        for c in event.corrections or ()
    ]
    return {
        "event_id": event.event_id,
        "short_id": event.event_id[-12:],
        "when": cat.time(moment),
        "pack_code": pack.pack_code or pack.passport_id or "",
        "manufacturer": pack.manufacturer_name or pack.manufacturer or "",
        "chemistry": word(CHEMISTRY, pack.battery_type, _),
        "serial": pack.serial or "",
        "energy": f"{cat.number(pack.rated_energy_kwh, 1)} kWh" if pack.rated_energy_kwh else "",
        "transport_class": t.transport_class,
        "transport": word(TRANSPORT, t.transport_class, _),
        "tone": tone,
        "icon": ICON[tone],
        "packing": t.packing_instruction,
        "disposition_token": t.disposition,
        "disposition": word(DISPOSITION, t.disposition, _),
        "un_number": (event.intake.un_number if event.intake else None) or "",
        "special_provision": (event.intake.special_provision if event.intake else None) or "",
        "reasons": reasons,
        "next_step": next_step,
        "checks": checks,
        "observations": observed,
        "technician": (event.intake.technician if event.intake else None) or "",
        "corrects": event.corrects or "",
        "corrections": corrections,
        "seq": event.seq,
    }


def pack_row(record: PackRecord, cat: Catalog) -> dict[str, Any]:
    """One line of today's packs (from the board's small record, not the whole event)."""
    _ = cat.gettext
    tone = TONE.get(record.transport_class, "info")
    return {
        "event_id": record.event_id,
        "when": cat.time(datetime.fromisoformat(record.utc.replace("Z", "+00:00"))),
        "pack_code": record.pack_code,
        "tone": tone,
        "icon": ICON[tone],
        "transport": word(TRANSPORT, record.transport_class, _),
        "packing": record.packing,
        "disposition": word(DISPOSITION, record.disposition, _),
        "corrects": record.corrects,
        "corrected_by": record.corrected_by or "",
    }


__all__ = ["SENTENCES", "card", "jpeg_size", "outline", "pack_row", "source_view"]
