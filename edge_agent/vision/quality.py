"""Per-frame quality gate: sharpness, exposure and glare, with reasons a technician can act on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edge_agent.model import ImageQuality

NORMALISED_SIDE = 640  # sharpness is scale-dependent: measure at one size so scores compare
_HIGH, _LOW = 250, 5


@dataclass(frozen=True, kw_only=True)
class QualityLimits:
    """Thresholds of the gate (from LabelSettings)."""

    min_sharpness: float = 60.0
    min_brightness: float = 40.0
    max_brightness: float = 245.0
    max_clipped: float = 0.35
    max_glare: float = 0.01


def _normalise(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape[:2]
    scale = NORMALISED_SIDE / max(h, w)
    if scale >= 1:
        return gray
    return cv2.resize(
        gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )


def _glare_mask(small: np.ndarray) -> np.ndarray:
    """Saturated blobs big enough to be a reflection, not a white pixel of print."""
    sat: np.ndarray = (small >= _HIGH).astype(np.uint8)
    sat = cv2.morphologyEx(sat, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(sat, connectivity=8)
    min_area = max(25, small.size // 2000)
    keep = np.zeros_like(sat)
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] >= min_area:
            keep[labels == i] = 1
    return keep


def assess(
    gray: np.ndarray,
    limits: QualityLimits,
    code_boxes: Sequence[Sequence[tuple[int, int]]] = (),
) -> ImageQuality:
    """Quality of one grayscale frame; ``code_boxes`` (frame coords) refine the glare reason."""
    small = _normalise(gray)
    sharpness = float(cv2.Laplacian(small, cv2.CV_64F).var())
    brightness = float(small.mean())
    highlights = float((small >= _HIGH).mean())
    shadows = float((small <= _LOW).mean())
    mask = _glare_mask(small)
    glare = float(mask.mean())
    reasons: list[str] = []
    if sharpness < limits.min_sharpness:
        reasons.append("label out of focus")
    if brightness < limits.min_brightness or shadows > limits.max_clipped:
        reasons.append("too dark")
    elif brightness > limits.max_brightness or highlights > limits.max_clipped:
        reasons.append("overexposed")
    if glare > limits.max_glare:
        reasons.append(_glare_reason(mask, gray.shape[:2], code_boxes))
    return ImageQuality(
        sharpness=round(sharpness, 2),
        brightness=round(brightness, 2),
        clipped_highlights=round(highlights, 4),
        clipped_shadows=round(shadows, 4),
        glare=round(glare, 4),
        passed=not reasons,
        reasons=tuple(reasons),
    )


def _glare_reason(
    mask: np.ndarray, shape: tuple[int, int], code_boxes: Sequence[Sequence[tuple[int, int]]]
) -> str:
    sy, sx = mask.shape[0] / shape[0], mask.shape[1] / shape[1]
    for box in code_boxes:
        poly = np.array([[x * sx, y * sy] for x, y in box], dtype=np.int32)
        region = np.zeros_like(mask)
        cv2.fillPoly(region, [poly], 1)
        if (mask & region).any():
            return "glare over the code"
    return "glare on the label"
