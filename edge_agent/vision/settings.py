"""Config section of the label camera and decoder."""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.dataform import bounded


@dataclass(frozen=True, kw_only=True)
class LabelSettings:
    """Camera source (device index, path, video, RTSP URL or folder) and decoding options."""

    source: str = "0"
    backend: str = "opencv"  # "opencv", "picamera2", "files"
    frames: int = bounded(1, 30, default=3)
    flush_frames: int = bounded(0, 30, default=4)
    jpeg_quality: int = bounded(10, 100, default=85)
    evidence_max_side: int = bounded(160, 8192, default=1600)
    min_sharpness: float = bounded(0.0, None, default=60.0)
