"""The label-frame quality gate of the camera check.

The default is the vision package's gate (``edge_agent.vision.quality.assess``) when that module
is installed, else a minimal local gate (sharpness and exposure). ``set_frame_gate(gate)`` swaps
in any callable ``(frame, LabelSettings) -> GateResult`` (frame: BGR or grayscale numpy array).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge_agent.vision.settings import LabelSettings

log = logging.getLogger("edge_agent.selftest.camera")

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


def vision_frame_gate() -> FrameGate | None:
    """An adapter to edge_agent.vision.quality.assess, or None when that module is absent."""
    try:
        quality: Any = importlib.import_module("edge_agent.vision.quality")
        assess, limits_type = quality.assess, quality.QualityLimits
    except (ImportError, AttributeError):
        return None

    def gate(frame: Frame, settings: LabelSettings) -> GateResult:
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        q = assess(gray, limits_type(min_sharpness=settings.min_sharpness))
        sharpness, mean = float(q.sharpness), float(q.brightness)
        reason = (
            ", ".join(q.reasons) if not q.passed else f"sharpness {sharpness:.0f}, mean {mean:.0f}"
        )
        return GateResult(passed=bool(q.passed), reason=reason, sharpness=sharpness, mean=mean)

    return gate


def default_frame_gate() -> FrameGate:
    """The vision package's gate when installed, else the basic local one."""
    return vision_frame_gate() or basic_frame_gate


_lock = threading.Lock()
_gate: FrameGate | None = None  # resolved lazily: importing vision at import time is not needed


def set_frame_gate(gate: FrameGate | None) -> None:
    """Use another quality gate for the camera check; None restores the default."""
    global _gate
    with _lock:
        _gate = gate


def current_frame_gate() -> FrameGate:
    """The gate the camera check uses now."""
    global _gate
    with _lock:
        if _gate is None:
            _gate = default_frame_gate()
            log.debug("camera check uses frame gate %s", getattr(_gate, "__module__", "?"))
        return _gate
