"""Config section of the label camera and decoder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge_agent.dataform import bounded


@dataclass(frozen=True, kw_only=True)
class LabelSettings:
    """Camera source (device index, path, video, RTSP URL or folder) and decoding options."""

    source: str = "0"
    backend: str = "opencv"  # "opencv", "picamera2", "files", "auto"
    frames: int = bounded(1, 30, default=3)  # stills per reading (multi-frame voting)
    flush_frames: int = bounded(0, 30, default=4)  # stale frames dropped before each still
    settle_frames: int = bounded(0, 120, default=10)  # frames dropped after opening (exposure)
    jpeg_quality: int = bounded(10, 100, default=85)
    evidence_max_side: int = bounded(160, 8192, default=1600)
    min_sharpness: float = bounded(0.0, None, default=60.0)  # variance of Laplacian at 640 px
    min_brightness: float = bounded(0.0, 255.0, default=40.0)
    max_brightness: float = bounded(0.0, 255.0, default=245.0)
    max_clipped: float = bounded(0.0, 1.0, default=0.35)  # fraction of clipped pixels
    max_glare: float = bounded(0.0, 1.0, default=0.01)  # fraction of saturated blobs
    passes_after_text: int = bounded(0, 20, default=2)  # extra passes when only text found
    decode_budget_ms: float = bounded(10.0, 60000.0, default=1500.0)  # per frame
    stop_votes: int = bounded(1, 30, default=2)  # stop capturing once a pack code has this
    # Nameplate OCR: "missing" = only when no barcode gave a pack code, "always" = also as a
    # cross-check of the barcode code, "never" = off.
    ocr: Literal["missing", "always", "never"] = "missing"
    ocr_engine: Literal["ppocr", "rapidocr", "tesseract"] = "ppocr"
    ocr_budget_ms: float = bounded(50.0, 60000.0, default=1200.0)  # per reading
