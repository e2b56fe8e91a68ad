"""Read the pack label: capture frames, gate quality, decode, vote, keep the evidence photo.

Station entry point::

    result = await read_label(camera, settings, timeout=5.0)
    result.reading      # edge_agent.model.LabelReading
    result.photo_jpeg   # evidence JPEG bytes (SHA-256 in result.reading.photo_sha256) or None

``read_label`` never raises for camera, image or decoding problems: they become a reading with
status ``failed`` (or ``partial``) and human-readable ``problems``. OpenCV and zxing-cpp work
runs in a worker thread (``asyncio.to_thread``) so the event loop stays responsive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from edge_agent.codes import IDENTITY_KINDS
from edge_agent.errors import CameraError, VisionError
from edge_agent.model import ImageQuality, LabelCode, LabelField, LabelReading, ReadingStatus
from edge_agent.vision.camera import Camera
from edge_agent.vision.decode import DecodedSymbol, DecodeResult, decode_gray, to_gray
from edge_agent.vision.evidence import check_frame, encode_evidence
from edge_agent.vision.nameplate_ocr import read_nameplate
from edge_agent.vision.quality import QualityLimits, assess
from edge_agent.vision.settings import LabelSettings

log = logging.getLogger("edge_agent.vision")


@dataclass(frozen=True, kw_only=True)
class LabelResult:
    """A label reading plus the evidence JPEG it refers to (``None`` when no frame was taken)."""

    reading: LabelReading
    photo_jpeg: bytes | None


@dataclass(frozen=True, kw_only=True)
class FrameResult:
    """Decoding and quality of one frame."""

    frame: np.ndarray
    decoded: DecodeResult
    quality: ImageQuality


def limits_from(settings: LabelSettings) -> QualityLimits:
    """Quality-gate thresholds from the label settings."""
    return QualityLimits(
        min_sharpness=settings.min_sharpness,
        min_brightness=settings.min_brightness,
        max_brightness=settings.max_brightness,
        max_clipped=settings.max_clipped,
        max_glare=settings.max_glare,
    )


def analyse_frame(frame: np.ndarray, settings: LabelSettings) -> FrameResult:
    """Decode one frame and assess its quality (CPU work; call from a thread)."""
    frame = check_frame(frame, "frame")
    gray = to_gray(frame)
    decoded = decode_gray(
        gray, passes_after_text=settings.passes_after_text, budget_ms=settings.decode_budget_ms
    )
    quality = assess(gray, limits_from(settings), [s.position for s in decoded.symbols])
    return FrameResult(frame=frame, decoded=decoded, quality=quality)


def _label_code(sym: DecodedSymbol) -> LabelCode:
    return LabelCode(
        symbology=sym.symbology,
        text=sym.text,
        kind=sym.parsed.kind,
        fields=sym.parsed.fields_as_text(),
        position=sym.position,
        decode_pass=sym.decode_pass,
    )


def vote(frames: Sequence[FrameResult]) -> tuple[list[DecodedSymbol], list[str]]:
    """Codes seen across frames, most votes first (pack codes before other codes); problems."""
    votes: Counter[tuple[str, str]] = Counter()
    first: dict[tuple[str, str], DecodedSymbol] = {}
    for fr in frames:
        for sym in fr.decoded.symbols:
            key = (sym.symbology, sym.text)
            votes[key] += 1
            first.setdefault(key, sym)
    ranked = sorted(first, key=lambda k: (first[k].parsed.kind not in IDENTITY_KINDS, -votes[k], k))
    problems: list[str] = []
    # module and cell codes on the same label are not a disagreement about the pack code
    pack = [
        k
        for k in ranked
        if first[k].parsed.kind in ("gbt34014", "gbt34014_cascade")
        and getattr(first[k].parsed.value, "product_type", "P") == "P"
    ]
    if len(pack) > 1:
        seen = ", ".join(f"{k[1]} ({votes[k]}/{len(frames)} frames)" for k in pack)
        problems.append(f"frames disagree on the pack code: {seen}")
    return [first[k] for k in ranked], problems


def _best_frame(frames: Sequence[FrameResult]) -> FrameResult:
    return max(
        frames,
        key=lambda f: (
            f.decoded.identified,
            len(f.decoded.symbols),
            f.quality.passed,
            f.quality.sharpness,
        ),
    )


def summarise(
    frames: Sequence[FrameResult],
    settings: LabelSettings,
    *,
    problems: Sequence[str] = (),
    started: float | None = None,
) -> LabelResult:
    """Vote over analysed frames and build the LabelReading plus evidence JPEG."""
    all_problems = list(problems)
    if not frames:
        reading = LabelReading(
            status="failed", problems=tuple(all_problems or ["no frame"]), duration_ms=_ms(started)
        )
        return LabelResult(reading=reading, photo_jpeg=None)
    symbols, vote_problems = vote(frames)
    all_problems.extend(vote_problems)
    best = _best_frame(frames)
    codes = [_label_code(s) for s in symbols]
    fields, ocr_check = _cross_check(codes, best, settings, all_problems)
    status: ReadingStatus
    if ocr_check == "fail":
        status = "partial"
    elif any(c.kind in IDENTITY_KINDS for c in codes):
        status = "partial" if vote_problems else "ok"
    elif symbols:
        status = "partial"
        all_problems.append("no GB/T 34014 code or passport identifier among the codes read")
    else:
        status = "failed"
        reasons = best.quality.reasons or ("no code found",)
        all_problems.extend(r for r in reasons if r not in all_problems)
    for sym in symbols:
        if sym.parsed.problem:
            all_problems.append(f"{sym.symbology} {sym.text[:40]!r}: {sym.parsed.problem}")
    jpeg: bytes | None = None
    sha: str | None = None
    try:
        jpeg, sha = encode_evidence(
            best.frame, quality=settings.jpeg_quality, max_side=settings.evidence_max_side
        )
    except VisionError as exc:
        all_problems.append(str(exc))
    reading = LabelReading(
        status=status,
        codes=tuple(codes),
        quality=best.quality,
        photo_sha256=sha,
        frames=len(frames),
        problems=tuple(all_problems),
        duration_ms=_ms(started),
        fields=tuple(fields) or None,
        ocr_check=ocr_check,
    )
    return LabelResult(reading=reading, photo_jpeg=jpeg)


_PACK_KINDS = ("gbt34014", "gbt34014_cascade")


def _cross_check(
    codes: list[LabelCode], best: FrameResult, settings: LabelSettings, problems: list[str]
) -> tuple[list[LabelField], Literal["pass", "fail"] | None]:
    """Nameplate OCR when needed: adds text codes, fields and the OCR-vs-barcode check."""
    fields = [
        LabelField(
            name="pack_code", value=c.text, source="barcode", confidence=1.0, position=c.position
        )
        for c in codes
        if c.kind in _PACK_KINDS
    ]
    identified = any(c.kind in IDENTITY_KINDS for c in codes)
    if settings.ocr == "never" or (settings.ocr == "missing" and identified):
        return fields, None
    text = read_nameplate(best.frame, settings)
    problems.extend(text.problems)
    fields.extend(text.fields)
    barcode_pack = {c.text for c in codes if c.kind in _PACK_KINDS}
    ocr_pack = {c.text for c in text.codes}
    if barcode_pack and ocr_pack:
        if barcode_pack & ocr_pack:
            return fields, "pass"
        problems.append(
            "OCR and barcode disagree on the pack code: barcode "
            + ", ".join(sorted(barcode_pack))
            + "; printed text "
            + ", ".join(sorted(ocr_pack))
        )
        return fields, "fail"
    if not barcode_pack:
        codes.extend(text.codes)
    return fields, None


def _ms(started: float | None) -> float | None:
    return None if started is None else round((time.perf_counter() - started) * 1000, 1)


def read_frames(frames: Sequence[np.ndarray], settings: LabelSettings) -> LabelResult:
    """Synchronous reading of already-captured frames (bad frames become problems)."""
    started = time.perf_counter()
    analysed: list[FrameResult] = []
    problems: list[str] = []
    for i, frame in enumerate(frames):
        try:
            analysed.append(analyse_frame(frame, settings))
        except VisionError as exc:
            log.warning("frame %d unusable: %s", i, exc)
            problems.append(f"frame {i}: {exc}")
    return summarise(analysed, settings, problems=problems, started=started)


def _enough(analysed: Sequence[FrameResult], settings: LabelSettings) -> bool:
    symbols, problems = vote(analysed)
    if problems or not symbols or symbols[0].parsed.kind not in IDENTITY_KINDS:
        return False
    key = (symbols[0].symbology, symbols[0].text)
    seen = sum(any((s.symbology, s.text) == key for s in f.decoded.symbols) for f in analysed)
    return seen >= min(settings.stop_votes, settings.frames)


async def read_label(camera: Camera, settings: LabelSettings, timeout: float) -> LabelResult:
    """Capture up to ``settings.frames`` stills, decode and vote; never raises for vision faults."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    analysed: list[FrameResult] = []
    problems: list[str] = []
    for i in range(settings.frames):
        left = deadline - time.monotonic()
        if left <= 0:
            problems.append(f"timeout after {timeout:g} s ({len(analysed)} frames read)")
            break
        try:
            frame = await asyncio.wait_for(asyncio.to_thread(camera.capture), left)
            result = await asyncio.wait_for(
                asyncio.to_thread(analyse_frame, frame, settings), deadline - time.monotonic()
            )
        except TimeoutError:
            problems.append(f"timeout after {timeout:g} s ({len(analysed)} frames read)")
            break
        except CameraError as exc:
            log.warning("label frame %d: %s", i, exc)
            problems.append(f"frame {i}: {exc}")
            break  # the camera itself fails: more attempts will not help
        except VisionError as exc:  # one unusable image: try the next frame
            log.warning("label frame %d: %s", i, exc)
            problems.append(f"frame {i}: {exc}")
            continue
        analysed.append(result)
        if _enough(analysed, settings):
            break
    return await asyncio.to_thread(
        summarise, analysed, settings, problems=problems, started=started
    )
