"""``picamera2`` camera backend for Raspberry Pi CSI cameras (libcamera), optional.

OpenCV cannot open libcamera devices, so Pi CSI cameras need picamera2. Install it from the
system packages (``sudo apt install python3-picamera2``) so it matches the system libcamera,
and create the virtual environment with ``--system-site-packages`` so the agent can import it.
On cameras with autofocus (Camera Module 3) one autofocus cycle runs before the first still.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import cv2
import numpy as np

from edge_agent.errors import CameraError
from edge_agent.vision.camera import Camera

log = logging.getLogger("edge_agent.vision")


class Picamera2Camera(Camera):
    """Still capture through picamera2; ``source`` is the camera number (``"0"``)."""

    backend = "picamera2"

    def __init__(
        self,
        source: str = "0",
        *,
        width: int = 2304,
        height: int = 1296,
        settle_frames: int = 5,
        **_: Any,
    ) -> None:
        super().__init__(source)
        try:
            module = importlib.import_module("picamera2")
        except ImportError as exc:
            raise CameraError(
                "picamera2 is not installed: on Raspberry Pi OS run "
                "'sudo apt install python3-picamera2' and use a venv with --system-site-packages"
            ) from exc
        try:
            cam = module.Picamera2(int(source) if source.isdigit() else 0)
            config = cam.create_still_configuration(main={"size": (width, height)})
            cam.configure(config)
            cam.start()
        except Exception as exc:  # libcamera raises RuntimeError/IndexError variants
            raise CameraError(f"cannot start Pi camera {source!r}: {exc}") from exc
        self.cam = cam
        self._to_settle = settle_frames
        self._focused = False

    def _capture_internal(self) -> np.ndarray:
        if not self._focused:
            self._focused = True
            autofocus = getattr(self.cam, "autofocus_cycle", None)
            if autofocus is not None:
                try:
                    autofocus()
                except Exception as exc:  # fixed-focus modules refuse AF controls
                    log.info("autofocus not available: %s", exc)
        for _ in range(self._to_settle):
            self.cam.capture_array("main")
        self._to_settle = 0
        rgb = np.asarray(self.cam.capture_array("main"))
        if rgb.ndim == 3 and rgb.shape[2] == 4:
            return cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGR)
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)

    def _close_internal(self) -> None:
        try:
            self.cam.stop()
            self.cam.close()
        except Exception as exc:
            log.info("closing Pi camera: %s", exc)
