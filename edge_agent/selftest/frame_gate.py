"""A minimal label-frame quality gate (sharpness and exposure), replaceable by the vision package's.

``set_frame_gate(gate)`` swaps in another gate: any callable
``(frame, LabelSettings) -> GateResult`` (frame is a BGR or grayscale numpy array).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from edge_agent.vision.settings import LabelSettings

Frame = npt.NDArray[np.uint8]

_GATE_SIDE = 640  # resize first so sharpness scores compare across cameras
MIN_MEAN = 40.0
MAX_MEAN = 220.0
MAX_CLIPPED_FRACTION = 0.05


@dataclass(frozen=True, kw_only=True)
class GateResult:
    """Whether a frame is usable for decoding, with the measured numbers and the reason."""

    passed: bool
    reason: str
    sharpness: float = 0.0
    mean: float = 0.0


FrameGate = Callable[[Frame, LabelSettings], GateResult]


def basic_frame_gate(frame: Frame, settings: LabelSettings) -> GateResult:
    """Variance of the Laplacian >= label.min_sharpness; mean brightness and clipping in range."""
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape[:2]
    scale = _GATE_SIDE / max(h, w)
    if scale < 1.0:
        gray = cv2.resize(
            gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    sharpness = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    mean = float(gray.mean())
    clipped = float(np.count_nonzero(gray >= 250)) / gray.size
    if mean < MIN_MEAN:
        return GateResult(
            passed=False, reason=f"too dark (mean {mean:.0f})", sharpness=sharpness, mean=mean
        )
    if mean > MAX_MEAN or clipped > MAX_CLIPPED_FRACTION:
        return GateResult(
            passed=False,
            reason=f"overexposed (mean {mean:.0f}, {clipped:.0%} clipped)",
            sharpness=sharpness,
            mean=mean,
        )
    if sharpness < settings.min_sharpness:
        return GateResult(
            passed=False,
            reason=f"blurred (sharpness {sharpness:.0f} < {settings.min_sharpness:g})",
            sharpness=sharpness,
            mean=mean,
        )
    return GateResult(
        passed=True,
        reason=f"sharpness {sharpness:.0f}, mean {mean:.0f}",
        sharpness=sharpness,
        mean=mean,
    )


_lock = threading.Lock()
_gate: FrameGate = basic_frame_gate


def set_frame_gate(gate: FrameGate | None) -> None:
    """Use another quality gate for the camera check; None restores the built-in one."""
    global _gate
    with _lock:
        _gate = basic_frame_gate if gate is None else gate


def current_frame_gate() -> FrameGate:
    """The gate the camera check uses now."""
    with _lock:
        return _gate
