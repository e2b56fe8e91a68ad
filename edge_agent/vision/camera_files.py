"""``files`` camera backend: one image file or a folder of images served in name order."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_agent.errors import CameraError
from edge_agent.vision.camera import Camera
from edge_agent.vision.evidence import load_image_file

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".pgm"})


class FolderCamera(Camera):
    """Serves images from a file or folder; ``loop`` restarts at the first image at the end."""

    backend = "files"

    def __init__(self, source: str, *, loop: bool = True) -> None:
        super().__init__(source)
        path = Path(source)
        if path.is_dir():
            self.paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            self.paths = [path]
        elif path.exists():  # a FIFO or a device: there, not missing
            raise CameraError(f"image source {source!r} is not a regular file or folder")
        else:
            raise CameraError(f"image source {source!r} does not exist")
        if not self.paths:
            raise CameraError(f"folder {source!r} holds no images")
        self.loop = loop
        self.index = 0

    def _capture_internal(self) -> np.ndarray:
        if self.index >= len(self.paths):
            if not self.loop:
                raise CameraError(f"no more images in {self.source!r}")
            self.index = 0
        path = self.paths[self.index]
        self.index += 1
        return load_image_file(str(path))
