"""Quality gate: sharpness, exposure and glare give actionable reasons."""

from __future__ import annotations

import cv2
import numpy as np

from edge_agent.sim.label_render import render_label
from edge_agent.vision.decode import decode_gray, to_gray
from edge_agent.vision.quality import QualityLimits, assess

CODE = "001PBS1ABCDEFGA3A0000123"
LIMITS = QualityLimits()


def label(symbology: str = "qr") -> np.ndarray:
    return to_gray(render_label(CODE, symbology, seed=1, degrade=0.0))


def test_clean_label_passes() -> None:
    q = assess(label(), LIMITS)
    assert q.passed, q.reasons
    assert q.sharpness > LIMITS.min_sharpness
    assert 0.0 <= q.glare < LIMITS.max_glare


def test_blurred_label_is_out_of_focus() -> None:
    sharp = assess(label(), LIMITS)
    blurred = assess(cv2.GaussianBlur(label(), (0, 0), 6), LIMITS)
    assert blurred.sharpness < sharp.sharpness / 10
    assert "label out of focus" in blurred.reasons
    assert not blurred.passed


def test_dark_and_overexposed() -> None:
    dark = assess((label() * 0.1).astype(np.uint8), LIMITS)
    assert "too dark" in dark.reasons
    bright = assess(np.clip(label().astype(np.int16) + 200, 0, 255).astype(np.uint8), LIMITS)
    assert "overexposed" in bright.reasons
    assert bright.clipped_highlights > 0.5


def test_glare_over_the_code_vs_elsewhere() -> None:
    gray = (label().astype(np.float32) * 0.8).astype(np.uint8)  # no saturated print
    boxes = [s.position for s in decode_gray(gray).symbols]
    assert boxes, "clean label must decode"
    xs = [p[0] for p in boxes[0]]
    ys = [p[1] for p in boxes[0]]
    on_code = gray.copy()
    cv2.circle(on_code, (int(np.mean(xs)), int(np.mean(ys))), 60, 255, -1)
    q = assess(on_code, LIMITS, boxes)
    assert q.glare > LIMITS.max_glare
    assert "glare over the code" in q.reasons
    elsewhere = gray.copy()
    cv2.circle(elsewhere, (90, 90), 60, 255, -1)
    assert "glare on the label" in assess(elsewhere, LIMITS, boxes).reasons
