"""The ``Camera`` seam: one abstract class, backends registered by name and imported lazily.

Backends: ``opencv`` (V4L2 device index or path, video file, RTSP/HTTP URL), ``files`` (one
image or a folder of images, e.g. the label simulator's output) and ``picamera2`` (Raspberry Pi
CSI cameras through libcamera, which OpenCV cannot open; optional import).
"""

from __future__ import annotations

import importlib
import logging
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import ClassVar

import numpy as np

from edge_agent.errors import CameraError, ImageError, VisionError
from edge_agent.vision.evidence import check_frame
from edge_agent.vision.settings import LabelSettings

log = logging.getLogger("edge_agent.vision")

#: backend name -> "module:Class"; modules import only when the backend is used.
BACKENDS: dict[str, str] = {
    "opencv": "edge_agent.vision.camera_opencv:OpenCvCamera",
    "files": "edge_agent.vision.camera_files:FolderCamera",
    "picamera2": "edge_agent.vision.camera_picamera2:Picamera2Camera",
}
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mjpeg"})


class Camera(ABC):
    """A still-capturing camera. Call ``capture()``; backends override ``_capture_internal``."""

    backend: ClassVar[str] = ""

    def __init__(self, source: str) -> None:
        self.source = source
        self._lock = threading.Lock()  # capture() may be called from worker threads
        self._closed = False

    def capture(self) -> np.ndarray:
        """One fresh frame (BGR or gray uint8); CameraError/ImageError on failure."""
        if self._closed:
            raise CameraError(f"camera {self.source!r} is closed")
        with self._lock:
            try:
                frame = self._capture_internal()
            except VisionError:
                raise
            except Exception as exc:  # translate library errors at the seam
                log.warning("capture from %s failed: %s", self.source, exc)
                raise CameraError(f"capture from {self.source!r} failed: {exc}") from exc
        return check_frame(frame, f"frame from {self.source!r}")

    @abstractmethod
    def _capture_internal(self) -> np.ndarray:
        """Backend-specific capture of one still."""

    def close(self) -> None:
        """Release the device (idempotent)."""
        if not self._closed:
            self._closed = True
            self._close_internal()

    def _close_internal(self) -> None:  # noqa: B027 - optional hook, most backends need it
        """Backend-specific release."""

    def __enter__(self) -> Camera:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def guess_backend(source: str) -> str:
    """Backend for a source text: folder or image file -> files; device/video/URL -> opencv."""
    path = Path(source)
    if source.isdigit() or source.startswith("/dev/") or "://" in source:
        return "opencv"
    if path.is_dir():
        return "files"
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return "opencv"
    return "files"


def open_camera(backend: str, source: str, **options: object) -> Camera:
    """Instantiate a registered backend by name (``auto`` guesses from the source)."""
    if backend == "auto":
        backend = guess_backend(source)
    target = BACKENDS.get(backend)
    if target is None:
        raise CameraError(f"unknown camera backend {backend!r}; known: {', '.join(BACKENDS)}")
    module_name, class_name = target.split(":")
    module = importlib.import_module(module_name)
    cls: type[Camera] = getattr(module, class_name)
    return cls(source, **options)  # type: ignore[arg-type]


def camera_from_settings(settings: LabelSettings) -> Camera:
    """Open the camera the ``[label]`` settings describe, with the options its backend takes."""
    backend = guess_backend(settings.source) if settings.backend == "auto" else settings.backend
    if backend == "opencv":
        return open_camera(
            backend,
            settings.source,
            flush_frames=settings.flush_frames,
            settle_frames=settings.settle_frames,
        )
    if backend == "picamera2":
        return open_camera(backend, settings.source, settle_frames=settings.settle_frames)
    return open_camera(backend, settings.source)


__all__ = [
    "BACKENDS",
    "Camera",
    "CameraError",
    "ImageError",
    "camera_from_settings",
    "guess_backend",
    "open_camera",
]
