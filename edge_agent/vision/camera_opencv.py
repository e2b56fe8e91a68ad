"""``opencv`` camera backend: V4L2 device (index or /dev path), video file, RTSP/HTTP stream."""

from __future__ import annotations

import logging

import cv2
import numpy as np

from edge_agent.errors import CameraError
from edge_agent.vision.camera import Camera

log = logging.getLogger("edge_agent.vision")


class OpenCvCamera(Camera):
    """cv2.VideoCapture with stale-buffer flush and exposure settling for live sources.

    Live sources (devices, network streams) buffer frames, so a plain ``read()`` returns an old
    image: before each still ``flush_frames`` frames are grabbed and dropped. After opening,
    ``settle_frames`` frames are read and dropped so auto-exposure and white balance settle.
    Video files are read in order without flushing.
    """

    backend = "opencv"

    def __init__(
        self,
        source: str,
        *,
        flush_frames: int = 4,
        settle_frames: int = 10,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        super().__init__(source)
        self.live = source.isdigit() or source.startswith("/dev/") or "://" in source
        target: int | str = int(source) if source.isdigit() else source
        try:
            cap = cv2.VideoCapture(target)
        except cv2.error as exc:
            raise CameraError(f"cannot open camera {source!r}: {exc}") from None
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"cannot open camera {source!r} (no device, file or stream)")
        self.cap = cap
        if self.live:
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # not honoured by every driver: flush anyway
        if width and height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.flush_frames = flush_frames if self.live else 0
        self._to_settle = settle_frames if self.live else 0

    def _capture_internal(self) -> np.ndarray:
        for _ in range(self._to_settle):
            self.cap.read()
        self._to_settle = 0
        for _ in range(self.flush_frames):
            if not self.cap.grab():
                break
        ok, frame = self.cap.read()
        if not ok or frame is None:
            raise CameraError(f"no frame from {self.source!r} (device gone or end of video)")
        return np.asarray(frame)

    def _close_internal(self) -> None:
        self.cap.release()
