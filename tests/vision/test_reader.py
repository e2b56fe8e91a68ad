"""read_label end to end: a real folder camera of simulated labels, voting, evidence, errors."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import cv2
import numpy as np

from edge_agent.errors import CameraError
from edge_agent.sim.label_render import render_label
from edge_agent.vision.camera import Camera
from edge_agent.vision.camera_files import FolderCamera
from edge_agent.vision.reader import read_frames, read_label
from edge_agent.vision.settings import LabelSettings

CODE = "001PBS1ABCDEFGA3A0000123"
OTHER = "03UPE0A1234567F1J0000042"


def write(folder: Path, images: list[np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        assert cv2.imwrite(str(folder / f"f{i}.png"), img)


def test_read_label_ok_with_evidence(tmp_path: Path) -> None:
    write(tmp_path, [render_label(CODE, "datamatrix", seed=s, degrade=0.3) for s in range(3)])
    settings = LabelSettings(frames=3, stop_votes=2, jpeg_quality=70, evidence_max_side=400)
    with FolderCamera(str(tmp_path)) as cam:
        result = asyncio.run(read_label(cam, settings, timeout=30))
    reading = result.reading
    assert reading.status == "ok", reading.problems
    assert reading.frames == 2  # stopped once two frames agreed on the pack code
    code = reading.codes[0]
    assert (code.symbology, code.text, code.kind) == ("DataMatrix", CODE, "gbt34014")
    assert code.fields["production_date"] == "2020-03-10"
    assert len(code.position) == 4
    assert result.photo_jpeg is not None and result.photo_jpeg[:2] == b"\xff\xd8"
    assert reading.photo_sha256 == hashlib.sha256(result.photo_jpeg).hexdigest()
    photo = cv2.imdecode(np.frombuffer(result.photo_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert max(photo.shape[:2]) == 400
    assert reading.quality is not None and reading.quality.sharpness > 0


def test_several_codes_on_one_label_are_all_returned() -> None:
    a = render_label(CODE, "qr", seed=1, degrade=0.0)
    b = render_label("https://batterypass.oem.eu/p/XY12", "code128", seed=2, degrade=0.0)
    width = max(a.shape[1], b.shape[1])
    pad = [
        np.pad(x, ((0, 0), (0, width - x.shape[1]), (0, 0)), constant_values=245) for x in (a, b)
    ]
    both = np.vstack(pad)
    reading = read_frames([both], LabelSettings()).reading
    kinds = {c.kind: c.text for c in reading.codes}
    assert kinds == {"gbt34014": CODE, "passport": "https://batterypass.oem.eu/p/XY12"}
    assert reading.status == "ok"


def test_frames_that_disagree_are_flagged() -> None:
    frames = [
        render_label(CODE, "qr", seed=1, degrade=0.1),
        render_label(OTHER, "qr", seed=2, degrade=0.1),
    ]
    reading = read_frames(frames, LabelSettings(frames=2)).reading
    assert reading.status == "partial"
    assert any("disagree" in p for p in reading.problems)


def test_module_code_beside_the_pack_code_is_no_disagreement() -> None:
    module = CODE[:3] + "M" + CODE[4:-3] + "042"
    a = render_label(module, "qr", seed=1, degrade=0.0)
    b = render_label(CODE, "qr", seed=2, degrade=0.0)
    width = max(a.shape[1], b.shape[1])
    pad = [
        np.pad(x, ((0, 0), (0, width - x.shape[1]), (0, 0)), constant_values=245) for x in (a, b)
    ]
    reading = read_frames([np.vstack(pad)], LabelSettings()).reading
    assert {c.text: c.fields["product_level"] for c in reading.codes} == {
        module: "module",
        CODE: "pack",
    }
    assert reading.status == "ok", reading.problems


def test_blank_frame_fails_with_reasons() -> None:
    blank = np.full((480, 640, 3), 128, np.uint8)
    reading = read_frames([blank], LabelSettings()).reading
    assert reading.status == "failed"
    assert "label out of focus" in reading.problems
    assert reading.codes == ()


def test_text_only_is_partial() -> None:
    img = render_label("HELLO-123", "code128", seed=1, degrade=0.0)
    reading = read_frames([img], LabelSettings()).reading
    assert reading.status == "partial"
    assert reading.codes[0].kind == "text"


class Broken(Camera):
    backend = "test"

    def _capture_internal(self) -> np.ndarray:
        raise CameraError("device unplugged")


def test_camera_failure_becomes_failed_reading() -> None:
    result = asyncio.run(read_label(Broken("x"), LabelSettings(frames=3), timeout=5))
    assert result.reading.status == "failed"
    assert result.photo_jpeg is None
    assert any("device unplugged" in p for p in result.reading.problems)


class Slow(Camera):
    backend = "test"

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.release = __import__("threading").Event()

    def _capture_internal(self) -> np.ndarray:
        self.release.wait(5)
        return np.full((100, 100), 128, np.uint8)


def test_timeout_becomes_failed_reading() -> None:
    cam = Slow("x")

    async def run() -> object:
        try:
            return await read_label(cam, LabelSettings(frames=1), timeout=0.2)
        finally:
            cam.release.set()

    result = asyncio.run(run())
    assert result.reading.status == "failed"  # type: ignore[attr-defined]
    assert any("timeout" in p for p in result.reading.problems)  # type: ignore[attr-defined]


def test_broken_image_in_folder_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "a-broken.png").write_bytes(b"not an image")
    assert cv2.imwrite(str(tmp_path / "b.png"), render_label(CODE, "qr", seed=1, degrade=0.1))
    with FolderCamera(str(tmp_path)) as cam:
        result = asyncio.run(read_label(cam, LabelSettings(frames=2), timeout=30))
    assert result.reading.status == "ok"
    assert result.reading.frames == 1
    assert any("a-broken.png" in p for p in result.reading.problems)
