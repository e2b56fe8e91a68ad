"""Camera seam: registry, files backend, OpenCV on a real video file, typed errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.errors import CameraError, ImageError
from edge_agent.vision.camera import BACKENDS, Camera, guess_backend, open_camera
from edge_agent.vision.camera_files import FolderCamera


def write_images(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.full((60, 80, 3), 20 * i, np.uint8)
        assert cv2.imwrite(str(folder / f"img{i}.png"), img)


def test_registry_and_guessing(tmp_path: Path) -> None:
    assert set(BACKENDS) == {"opencv", "files", "picamera2"}
    write_images(tmp_path, 1)
    assert guess_backend(str(tmp_path)) == "files"
    assert guess_backend(str(tmp_path / "img0.png")) == "files"
    assert guess_backend("0") == "opencv"
    assert guess_backend("/dev/video2") == "opencv"
    assert guess_backend("rtsp://cam.local/stream") == "opencv"
    assert guess_backend("clip.mp4") == "opencv"
    with pytest.raises(CameraError, match="unknown camera backend"):
        open_camera("nope", "0")


def test_folder_camera_cycles_in_name_order(tmp_path: Path) -> None:
    write_images(tmp_path, 3)
    (tmp_path / "notes.txt").write_text("ignored")
    with open_camera("auto", str(tmp_path)) as cam:
        assert isinstance(cam, FolderCamera)
        means = [int(cam.capture().mean()) for _ in range(4)]
    assert means == [0, 20, 40, 0]
    with pytest.raises(CameraError, match="closed"):
        cam.capture()


def test_folder_camera_errors(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="does not exist"):
        FolderCamera(str(tmp_path / "missing"))
    with pytest.raises(CameraError, match="holds no images"):
        FolderCamera(str(tmp_path))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    cam = FolderCamera(str(tmp_path), loop=False)
    with pytest.raises(ImageError):
        cam.capture()
    with pytest.raises(CameraError, match="no more images"):
        cam.capture()


def test_opencv_camera_reads_a_real_video_file(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    for i in range(3):
        writer.write(np.full((48, 64, 3), 60 * (i + 1), np.uint8))
    writer.release()
    with open_camera("auto", str(path), flush_frames=4, settle_frames=5) as cam:
        assert cam.backend == "opencv"
        # A video file is not flushed: frames come in order.
        levels = [float(cam.capture().mean()) for _ in range(3)]
        assert levels == sorted(levels) and abs(levels[0] - 60) < 8
        with pytest.raises(CameraError, match="end of video"):
            cam.capture()


def test_opencv_camera_missing_device() -> None:
    with pytest.raises(CameraError, match="cannot open camera"):
        open_camera("opencv", "/dev/video-does-not-exist")


@pytest.mark.skipif(importlib.util.find_spec("picamera2") is not None, reason="picamera2 present")
def test_picamera2_missing_is_a_typed_error() -> None:
    with pytest.raises(CameraError, match="picamera2 is not installed"):
        open_camera("picamera2", "0")


class Exploding(Camera):
    backend = "test"

    def _capture_internal(self) -> np.ndarray:
        raise RuntimeError("driver hiccup")


class Tiny(Camera):
    backend = "test"

    def _capture_internal(self) -> np.ndarray:
        return np.zeros((2, 2), np.uint8)


def test_library_errors_are_translated() -> None:
    with pytest.raises(CameraError, match="driver hiccup"):
        Exploding("x").capture()
    with pytest.raises(ImageError, match="too small"):
        Tiny("x").capture()
