"""Camera check: the configured source opens, gives a frame, and it passes the quality gate."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import cv2
import numpy as np

from edge_agent.selftest.frame_gate import Frame, current_frame_gate
from edge_agent.selftest.model import CheckContext, Outcome, failed, passed, skipped
from edge_agent.vision.settings import LabelSettings

log = logging.getLogger("edge_agent.selftest.camera")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


class CameraUnavailableError(Exception):
    """Internal: the source did not give a frame; the message says why."""


def grab_frame(settings: LabelSettings) -> tuple[Frame, str]:
    """One frame from the configured source and a short description of where it came from."""
    source = settings.source
    if settings.backend == "picamera2":
        return _grab_picamera2()
    path = Path(source).expanduser()
    if settings.backend == "files" or path.is_dir():
        if not path.is_dir():
            raise CameraUnavailableError(f"folder {path} does not exist")
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise CameraUnavailableError(f"no images in {path}")
        frame = cv2.imread(str(images[0]), cv2.IMREAD_COLOR)
        if frame is None:
            raise CameraUnavailableError(f"{images[0]} is not a readable image")
        return np.asarray(frame, dtype=np.uint8), f"{images[0].name} of {len(images)} in {path}"
    if path.suffix.lower() in IMAGE_SUFFIXES:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise CameraUnavailableError(f"{path} missing or not a readable image")
        return np.asarray(frame, dtype=np.uint8), str(path)
    target: int | str = int(source) if source.isdigit() else source
    if isinstance(target, str) and "://" not in target and not path.exists():
        raise CameraUnavailableError(f"{source} does not exist")
    cap = cv2.VideoCapture(target)
    try:
        if not cap.isOpened():
            raise CameraUnavailableError(f"cannot open video source {source!r}")
        frame = None
        # V4L2 buffers stale frames; read past them like the agent does.
        for _ in range(settings.flush_frames + 1):
            ok, got = cap.read()
            if ok:
                frame = got
        if frame is None:
            raise CameraUnavailableError(f"{source!r} opened but gave no frame")
        return np.asarray(frame, dtype=np.uint8), f"video source {source!r}"
    finally:
        cap.release()


def _grab_picamera2() -> tuple[Frame, str]:
    if importlib.util.find_spec("picamera2") is None:
        raise CameraUnavailableError(
            "picamera2 is not importable (install python3-picamera2 with apt)"
        )
    from picamera2 import Picamera2  # type: ignore[import-not-found]  # only on Raspberry Pi OS

    cam = Picamera2()
    try:
        cam.configure(cam.create_still_configuration())
        cam.start()
        frame = cam.capture_array()
    finally:
        cam.close()
    return np.asarray(frame, dtype=np.uint8), "picamera2"


def check_camera(ctx: CheckContext) -> Outcome:
    """Open the label camera, grab a frame and run the (pluggable) quality gate on it."""
    settings = ctx.config.label
    if not settings.source and settings.backend != "picamera2":
        return skipped("label.source not set")
    try:
        frame, where = grab_frame(settings)
    except CameraUnavailableError as exc:
        return failed(
            str(exc),
            "check label.source; USB: `v4l2-ctl --list-devices` and replug; "
            "CSI: `rpicam-hello --list-cameras`",
        )
    except (cv2.error, OSError, RuntimeError) as exc:
        log.warning("camera %s failed: %s", settings.source, exc)
        return failed(f"camera error: {exc}", "replug the camera and check `dmesg | tail`")
    gate = current_frame_gate()(frame, settings)
    h, w = frame.shape[:2]
    if not gate.passed:
        return failed(
            f"{w}x{h} frame from {where} fails the quality gate: {gate.reason}",
            "fix focus and the fixed lighting (no glare on the label), clean the lens, then rerun",
        )
    return passed(f"{w}x{h} frame from {where}: {gate.reason}")
