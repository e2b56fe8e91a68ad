"""Evidence photo: a downscaled JPEG of the frame the codes were read from, and its SHA-256."""

from __future__ import annotations

import hashlib
import os
import stat

MAX_IMAGE_BYTES = 64 * 1024 * 1024
MAX_PIXELS = 50_000_000
# OpenCV's own decoder limit (read once, when cv2 loads) for formats the header check does not
# know (TIFF, PGM, ...); a limit set by the environment wins
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from edge_agent.errors import ImageError  # noqa: E402
from edge_agent.vision.image_header import image_size  # noqa: E402


def encode_evidence(image: np.ndarray, *, quality: int, max_side: int) -> tuple[bytes, str]:
    """JPEG bytes (longest side at most ``max_side``) and their SHA-256 hex digest."""
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ImageError("JPEG encoding of the evidence photo failed")
    data = buf.tobytes()
    return data, hashlib.sha256(data).hexdigest()


def load_image_bytes(data: bytes) -> np.ndarray:
    """Decode image file bytes (PNG, JPEG, WebP, ...) to a BGR array; ImageError when unusable."""
    if not data:
        raise ImageError("empty image data")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(f"image data too large: {len(data)} bytes")
    declared = image_size(data)
    if declared is not None:  # refuse before decoding: 388 KB of PNG can be 1.2 GB of pixels
        w, h = declared
        if w * h > MAX_PIXELS:
            raise ImageError(f"{w}x{h} pixels is too large (at most {MAX_PIXELS} pixels)")
    arr = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(arr, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageError(f"undecodable image: {exc}") from None
    return check_frame(image, "image data")


def check_frame(image: object, what: str) -> np.ndarray:
    """Validate a frame array (uint8, 2-D gray or 3/4-channel, non-empty, bounded size)."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{what}: not an image (undecodable or unsupported format)")
    if image.dtype != np.uint8:
        raise ImageError(f"{what}: pixel type {image.dtype} unsupported, uint8 expected")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ImageError(f"{what}: shape {image.shape} is not a gray/BGR image")
    h, w = image.shape[:2]
    if h < 8 or w < 8:
        raise ImageError(f"{what}: {w}x{h} pixels is too small to hold a code")
    if h * w > MAX_PIXELS:
        raise ImageError(f"{what}: {w}x{h} pixels is too large")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return image


def check_image_file(path: str) -> None:
    """ImageError, without decoding, when ``path`` is no regular file or declares too many pixels."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ImageError(f"{path} is not a regular file")
        with open(path, "rb") as fh:
            head = fh.read(256 * 1024)  # a JPEG frame header may follow a long EXIF block
    except FileNotFoundError:
        raise ImageError(f"image {path} does not exist") from None
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {exc.strerror or exc}") from None
    declared = image_size(head)
    if declared is not None and declared[0] * declared[1] > MAX_PIXELS:
        w, h = declared
        raise ImageError(f"{path}: {w}x{h} pixels is too large (at most {MAX_PIXELS} pixels)")


def load_image_file(path: str) -> np.ndarray:
    """Read an image file; ImageError when missing or undecodable."""
    try:
        # stat first: opening a FIFO would block, a device could be read for ever
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ImageError(f"{path} is not a regular file")
        with open(path, "rb") as fh:
            data = fh.read(MAX_IMAGE_BYTES + 1)
    except FileNotFoundError:
        raise ImageError(f"image {path} does not exist") from None
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {exc.strerror or exc}") from None
    try:
        return load_image_bytes(data)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from None
