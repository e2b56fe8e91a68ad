"""The ``ppocr`` engine (own PP-OCR runner on the rapidocr wheel's models) and malloc tuning.

Real rendered nameplates at fixed seeds and the real ONNX models; the memory figures are in
bench/ (``bench_label.py --only rss``), not here.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from edge_agent import malloc_tuning
from edge_agent.codes.nameplate import find_codes
from edge_agent.sim.label_nameplate import available_fonts, render_nameplate
from edge_agent.vision.decode import to_gray
from edge_agent.vision.nameplate_ocr import read_nameplate
from edge_agent.vision.ocr import get_engine
from edge_agent.vision.ocr_ppocr import (
    DET_MODEL,
    REC_MODEL,
    PpOcrEngine,
    ctc_decode,
    db_boxes,
    model_dir,
)
from edge_agent.vision.reader import read_frames
from edge_agent.vision.settings import LabelSettings
from tests.conftest import ROOT, require_real_part

PPOCR = LabelSettings(ocr_engine="ppocr", ocr_budget_ms=8000.0)


@pytest.fixture(scope="module", autouse=True)
def _parts() -> None:
    if not available_fonts():
        require_real_part(False, "CJK fonts (apt install fonts-noto-cjk fonts-wqy-microhei)")


def test_models_come_from_the_installed_rapidocr_wheel() -> None:
    folder = model_dir()
    assert folder.parts[-2:] == ("rapidocr", "models")
    assert (folder / DET_MODEL).stat().st_size > 1_000_000
    assert (folder / REC_MODEL).stat().st_size > 1_000_000


def test_reads_text_only_nameplates_with_no_wrong_code() -> None:
    engine = get_engine("ppocr")
    read = 0
    for seed in range(8):
        plate = render_nameplate(seed=seed, degrade=0.5, cascade=seed == 5)
        gray = to_gray(plate.image)
        lines = engine.read(gray)
        codes = {c.code for c in find_codes([ln.text for ln in lines])}
        assert codes <= {plate.code}, f"wrong code on seed {seed}: {codes}"
        read += plate.code in codes
        h, w = gray.shape
        for ln in lines:  # the polygons and scores the pipeline uses
            assert len(ln.box) == 4 and 0.5 <= ln.score <= 1.0
            assert all(-2 <= x <= w + 2 and -2 <= y <= h + 2 for x, y in ln.box)
        tops = [min(y for _, y in ln.box) for ln in lines]
        assert tops == sorted(tops)  # top to bottom
    assert read >= 7


def test_code_line_polygon_covers_the_printed_code() -> None:
    plate = render_nameplate(seed=3, degrade=0.0)
    lines = get_engine("ppocr").read(to_gray(plate.image))
    (line,) = [ln for ln in lines if plate.code in ln.text.replace(" ", "")]
    box = np.array(line.box, np.float32)
    width = max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[3] - box[2]))
    height = max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2]))
    assert width > 8 * height  # a whole line, not a word or a character
    assert line.score > 0.9


def test_banded_detection_finds_the_lines_of_whole_frame_detection() -> None:
    plate = render_nameplate(seed=6, degrade=0.4)
    gray = to_gray(plate.image)
    banded = get_engine("ppocr")
    assert isinstance(banded, PpOcrEngine)
    whole = PpOcrEngine(det_band=0)
    a, b = banded.detect(gray), whole.detect(gray)
    assert len(a) == len(b) >= 6
    for box in a:  # every banded line has a whole-frame twin
        gap = min(float(np.abs(box - other).max()) for other in b)
        assert gap < 8, gap
    for engine in (banded, whole):
        codes = {c.code for c in find_codes([ln.text for ln in engine.read(gray)])}
        assert codes == {plate.code}


def test_pipeline_with_ppocr_gives_the_code_and_fields() -> None:
    plate = render_nameplate(seed=2, degrade=0.4)
    reading = read_frames([plate.image], PPOCR).reading
    assert reading.status == "ok"
    (code,) = reading.codes
    assert (code.text, code.symbology, len(code.position)) == (plate.code, "OCR", 4)
    fields = {f.name: f for f in reading.fields or ()}
    assert fields["pack_code"].source == "ocr"
    assert fields["rated_voltage_v"].value == plate.fields["rated_voltage_v"]


def test_same_code_as_rapidocr_on_the_same_models() -> None:
    plate = render_nameplate(seed=4, degrade=0.3)
    gray = to_gray(plate.image)
    for name in ("ppocr", "rapidocr"):
        codes = {c.code for c in find_codes([ln.text for ln in get_engine(name).read(gray)])}
        assert codes == {plate.code}, name


def test_time_budget_is_honoured() -> None:
    plate = render_nameplate(seed=2, degrade=0.3).image
    for _ in range(2):  # loads the model, measures detection
        read_nameplate(plate, PPOCR)
    small = read_nameplate(plate, LabelSettings(ocr_engine="ppocr", ocr_budget_ms=50.0))
    assert small.duration_ms < 50.0 + 30.0
    assert small.codes == ()
    assert any("budget" in p for p in small.problems)


def test_ctc_decode_merges_repeats_and_drops_blanks() -> None:
    chars = ["", "A", "B", " "]
    steps = [1, 1, 0, 1, 2, 2, 0, 0, 3, 2]  # A A _ A B B _ _ ' ' B
    probs = np.full((len(steps), 4), 0.01, np.float32)
    probs[np.arange(len(steps)), steps] = 0.9
    probs[4, 2] = 0.7
    text, score = ctc_decode(probs, chars)
    assert text == "AAB B"
    assert score == pytest.approx((0.9 + 0.9 + 0.7 + 0.9 + 0.9) / 5)
    assert ctc_decode(np.eye(4, dtype=np.float32)[[0, 0, 0]], chars) == ("", 0.0)


def test_db_boxes_grow_a_rotated_text_region_back_and_scale_it() -> None:
    prob = np.zeros((200, 300), np.float32)
    rect = ((150.0, 100.0), (160.0, 20.0), 20.0)
    cv2.fillPoly(prob, [cv2.boxPoints(rect).astype(np.int32)], 0.9)
    prob[5:7, 5:7] = 0.9  # speck below the minimum side: dropped
    (box,) = db_boxes(prob, 2.0, 2.0)
    side = np.linalg.norm(box[0] - box[1]) / 2, np.linalg.norm(box[0] - box[3]) / 2
    grow = 160 * 20 * 1.6 / (2 * (160 + 20))  # DB's unclip distance
    assert side[0] == pytest.approx(160 + 2 * grow, abs=8)  # + dilation, pixel edges
    assert side[1] == pytest.approx(20 + 2 * grow, abs=8)
    assert box[0][0] < box[1][0] and box[0][1] < box[3][1]  # top-left first, clockwise
    assert np.allclose(box.mean(axis=0), (300, 200), atol=4)


def _agent_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


TUNED_READ = """
    from edge_agent.malloc_tuning import release_free_memory, tune_malloc
    print("tuned", tune_malloc(), tune_malloc())
    from edge_agent.codes.nameplate import find_codes
    from edge_agent.sim.label_nameplate import render_nameplate
    from edge_agent.vision.decode import to_gray
    from edge_agent.vision.ocr import get_engine
    engine = get_engine("ppocr")
    for seed in (0, 1):
        plate = render_nameplate(seed=seed, degrade=0.3)
        lines = engine.read(to_gray(plate.image))
        codes = {c.code for c in find_codes([ln.text for ln in lines])}
        print("read", codes == {plate.code})
    print("trimmed", release_free_memory())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc tuning applies to glibc")
def test_malloc_tuning_applies_on_glibc_and_ocr_still_reads() -> None:
    proc = _agent_python(TUNED_READ)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:4] == [
        "tuned True True",
        "read True",
        "read True",
        "trimmed True",
    ]


def test_malloc_tuning_can_be_switched_off() -> None:
    proc = _agent_python(TUNED_READ, **{malloc_tuning.DISABLE_ENV: "0"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:4] == [
        "tuned False False",
        "read True",
        "read True",
        "trimmed False",
    ]


def test_malloc_tuning_is_a_no_op_off_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    malloc_tuning._glibc.cache_clear()
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    try:
        assert malloc_tuning._glibc() is None
        assert malloc_tuning.release_free_memory() is False
    finally:
        malloc_tuning._glibc.cache_clear()


def test_cli_tunes_malloc_at_start() -> None:
    probe = """
        import edge_agent.cli, edge_agent.malloc_tuning as m
        edge_agent.cli.main(["code", "parse", "001PBS1ABCDEFGA3A0000123"])
        print("state", m._tuned)
    """
    proc = _agent_python(probe)
    assert proc.returncode == 0, proc.stderr
    expected = "[True]" if platform.libc_ver()[0] == "glibc" else "[False]"
    assert f"state {expected}" in proc.stdout
