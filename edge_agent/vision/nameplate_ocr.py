"""Nameplate OCR step of the label pipeline: text lines -> pack code and rated fields.

Runs after the barcode passes, only when ``settings.ocr`` asks for it, within
``settings.ocr_budget_ms``. A code found in the text is accepted only when the GB/T 34014 parser
validates it (``edge_agent.codes.nameplate``); a text code that differs from the barcode's pack
code is a failed check, never a guess.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from edge_agent.codes.nameplate import TextCode, find_codes, find_fields
from edge_agent.errors import OcrError
from edge_agent.model import LabelCode, LabelField
from edge_agent.vision.decode import to_gray
from edge_agent.vision.ocr import TextLine, get_engine
from edge_agent.vision.settings import LabelSettings

log = logging.getLogger("edge_agent.vision")


@dataclass(frozen=True, kw_only=True)
class NameplateText:
    """What OCR read on the frame: lines, validated codes, fields, problems, time spent."""

    lines: tuple[TextLine, ...] = ()
    codes: tuple[LabelCode, ...] = ()
    fields: tuple[LabelField, ...] = ()
    problems: tuple[str, ...] = ()
    duration_ms: float = 0.0


def _code(tc: TextCode, line: TextLine) -> LabelCode:
    kind = "gbt34014" if len(tc.code) == 24 else "gbt34014_cascade"
    from edge_agent.codes import parse_identifier

    return LabelCode(
        symbology="OCR",
        text=tc.code,
        kind=kind,
        fields=parse_identifier(tc.code).fields_as_text(),
        position=line.box,
        decode_pass="ocr" if tc.swaps == 0 else f"ocr-{tc.swaps}swap",
    )


def read_nameplate(frame: np.ndarray, settings: LabelSettings) -> NameplateText:
    """OCR one frame within the budget; engine faults become problems (never raises)."""
    started = time.perf_counter()
    try:
        engine = get_engine(settings.ocr_engine)
        lines = engine.read(to_gray(frame), budget_ms=settings.ocr_budget_ms)
    except OcrError as exc:
        log.warning("nameplate OCR: %s", exc)
        ms = (time.perf_counter() - started) * 1000
        return NameplateText(problems=(f"nameplate OCR: {exc}",), duration_ms=ms)
    texts = [ln.text for ln in lines]
    scores = [ln.score for ln in lines]
    codes = find_codes(texts, scores)
    fields = [
        LabelField(
            name="pack_code",
            value=c.code,
            source="ocr",
            confidence=min(1.0, c.confidence),
            position=lines[c.line].box,
        )
        for c in codes
    ]
    fields += [
        LabelField(
            name=f.name,
            value=f.value,
            source="ocr",
            confidence=min(1.0, f.confidence),
            position=lines[f.line].box,
        )
        for f in find_fields(texts, scores)
    ]
    return NameplateText(
        lines=tuple(lines),
        codes=tuple(_code(c, lines[c.line]) for c in codes),
        fields=tuple(fields),
        duration_ms=(time.perf_counter() - started) * 1000,
    )
