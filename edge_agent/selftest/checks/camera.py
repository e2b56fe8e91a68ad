"""Camera check: the label camera opens through the Camera seam, gives a frame, and the frame
passes the station's quality gate (``vision.quality`` with the ``[label]`` thresholds)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge_agent.errors import CameraError, ImageError
from edge_agent.model import ImageQuality
from edge_agent.selftest.model import CheckContext, Outcome, SelftestConfig, failed, passed, skipped
from edge_agent.vision.camera import Camera, camera_from_settings
from edge_agent.vision.camera_files import IMAGE_SUFFIXES, FolderCamera
from edge_agent.vision.settings import LabelSettings

log = logging.getLogger("edge_agent.selftest.camera")

SOURCE_STEP = (
    "check label.source; USB: `v4l2-ctl --list-devices` and replug; "
    "CSI: `rpicam-hello --list-cameras`"
)
GATE_STEP = "fix focus and the fixed lighting (no glare on the label), clean the lens, then rerun"


def camera_required(config: SelftestConfig) -> bool:
    """Required rule: a label source is configured (or a CSI camera, which needs none)."""
    return bool(config.label.source) or config.label.backend == "picamera2"


def _where(camera: Camera) -> str:
    """Where the last frame came from, in the words of the old check output."""
    source = Path(camera.source)
    if isinstance(camera, FolderCamera) and source.is_dir():
        path = camera.paths[(camera.index - 1) % len(camera.paths)]
        return f"{path.name} of {len(camera.paths)} in {source}"
    if camera.backend == "picamera2":
        return "picamera2"
    if source.suffix.lower() in IMAGE_SUFFIXES:
        return str(source)  # one image file, through the files or the opencv backend
    return f"video source {camera.source!r}"


def grab_frame(settings: LabelSettings) -> tuple[np.ndarray, str]:
    """One frame from the camera the station would open, and where it came from."""
    with camera_from_settings(settings) as camera:
        frame = camera.capture()
        return frame, _where(camera)


def frame_quality(frame: np.ndarray, settings: LabelSettings) -> ImageQuality:
    """The station's quality gate on one frame."""
    from edge_agent.vision.decode import to_gray
    from edge_agent.vision.quality import assess
    from edge_agent.vision.reader import limits_from

    return assess(to_gray(frame), limits_from(settings))


def check_camera(ctx: CheckContext) -> Outcome:
    """Open the label camera, grab a frame and run the quality gate on it."""
    settings = ctx.config.label
    if not settings.source and settings.backend != "picamera2":
        return skipped("label.source not set")
    try:
        frame, where = grab_frame(settings)
    except ImageError as exc:
        return failed(f"not a readable image: {exc}", SOURCE_STEP)
    except CameraError as exc:
        return failed(str(exc), SOURCE_STEP)
    except OSError as exc:
        log.warning("camera %s failed: %s", settings.source, exc)
        return failed(f"camera error: {exc}", "replug the camera and check `dmesg | tail`")
    quality = frame_quality(frame, settings)
    h, w = frame.shape[:2]
    if not quality.passed:
        return failed(
            f"{w}x{h} frame from {where} fails the quality gate: {', '.join(quality.reasons)}",
            GATE_STEP,
        )
    return passed(
        f"{w}x{h} frame from {where}: "
        f"sharpness {quality.sharpness:.0f}, mean {quality.brightness:.0f}"
    )
