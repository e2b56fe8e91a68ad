"""A small PP-OCR runner: the det/rec ONNX models of the ``rapidocr`` wheel on onnxruntime directly.

Same models as the ``rapidocr`` engine, without its pipeline: memory-lean onnxruntime sessions
(no memory pattern, which keeps a plan and buffers per input shape; no CPU arena, which keeps
its largest blocks: measured 19 MB more resident even when shrunk after every run), worker
threads that sleep rather than spin, detection on an input bounded to ``det_max_side`` and run
in horizontal bands, DB post-processing and CTC decoding with numpy and OpenCV, recognition one
line at a time at the model's 48 px height and a bounded width. After a reading, freed heap
memory is handed back to the system (``malloc_trim``).
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_agent.errors import OcrError
from edge_agent.malloc_tuning import release_free_memory
from edge_agent.vision.ocr import OcrEngine, TextLine, crop_line

DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"
_REC_HEIGHT = 48  # the recognition model's input height
_REC_MIN_WIDTH = 320  # PaddleOCR pads shorter lines to this width
_REC_MAX_WIDTH = 1600  # longer lines are squeezed (a 24-character code needs about 700 px)
# Detection runs on horizontal bands of the scaled frame, each with context rows above and below,
# and the probability maps are stitched: the network's activations scale with the band, not the
# frame (peak of `run` 293 vs 322 MB, same reads). Multiples of 32, as the network needs.
_DET_BAND = 224
_DET_MARGIN = 64
_DB_THRESH = 0.3  # probability above which a pixel is text
_DB_BOX_THRESH = 0.5  # mean probability a box needs
_DB_UNCLIP = 1.6  # DB shrinks text regions when training; grow them back by this ratio
_MIN_BOX_SIDE = 3
_MAX_BOXES = 300
_MIN_SCORE = 0.5


def model_dir() -> Path:
    """The folder of ONNX models inside the installed ``rapidocr`` package (not imported)."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        raise OcrError("rapidocr is not installed (its wheel carries the PP-OCR models)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    missing = [n for n in (DET_MODEL, REC_MODEL) if not (folder / n).is_file()]
    if missing:
        raise OcrError(f"PP-OCR models missing in {folder}: {', '.join(missing)}")
    return folder


def _session_options(ort: Any, threads: int, arena: bool) -> Any:
    opts = ort.SessionOptions()
    opts.enable_cpu_mem_arena = arena  # when on, shrunk after every run (see _run_options)
    opts.enable_mem_pattern = False
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # idle workers sleep instead of spinning: on a busy 2-core machine spinning took the cores
    # from the worker doing the work (1.6-2.1x slower per reading; 1.2-1.3x when less loaded)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: the cores this process may run on
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _run_options(ort: Any, arena: bool) -> Any:
    opts = ort.RunOptions()
    if arena:
        opts.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return opts


class PpOcrEngine(OcrEngine):
    """PP-OCRv6 small det + rec on onnxruntime with bounded inputs and lean sessions."""

    name = "ppocr"

    def __init__(
        self,
        *,
        threads: int | None = None,
        det_max_side: int = 736,
        det_band: int = _DET_BAND,
        arena: bool = False,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise OcrError("onnxruntime is not installed: pip install onnxruntime") from exc
        folder = model_dir()
        threads = threads or max(1, min(4, _usable_cores()))
        opts = _session_options(ort, threads, arena)
        providers = ["CPUExecutionProvider"]
        self._det: Any = ort.InferenceSession(str(folder / DET_MODEL), opts, providers=providers)
        self._rec: Any = ort.InferenceSession(str(folder / REC_MODEL), opts, providers=providers)
        self._run_opts = _run_options(ort, arena)
        meta = self._rec.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise OcrError(f"{REC_MODEL} carries no character list")
        # CTC classes: blank, the model's characters, then space
        self._chars = ["", *meta["character"].splitlines(), " "]
        self._det_max_side = det_max_side
        self._det_band = det_band
        self._lock = threading.Lock()  # one inference at a time keeps the peak low
        release_free_memory()  # the model files' parse buffers
        self._det_times: deque[float] = deque(maxlen=5)
        self._calls = 0

    @property
    def det_s(self) -> float:
        """Typical detection time (median of recent runs): a deadline must leave room for it."""
        return float(np.median(self._det_times)) if self._det_times else 0.0

    def _read(self, gray: np.ndarray, deadline: float | None) -> list[TextLine]:
        with self._lock:
            try:
                return self._read_locked(gray, deadline)
            finally:
                release_free_memory()

    def _read_locked(self, gray: np.ndarray, deadline: float | None) -> list[TextLine]:
        det_s = self.det_s
        if deadline is not None and time.perf_counter() + det_s > deadline:
            raise OcrError(f"OCR budget too small for detection (takes {det_s * 1000:.0f} ms)")
        started = time.perf_counter()
        boxes = self.detect(gray)
        self._calls += 1
        if self._calls > 1:  # the first run includes onnxruntime's warm-up
            self._det_times.append(time.perf_counter() - started)
        lines = []
        for box in boxes:
            if deadline is not None and time.perf_counter() > deadline:
                break
            text, score = self.recognise(crop_line(gray, box))
            if text.strip() and score >= _MIN_SCORE:
                quad = tuple((round(float(x)), round(float(y))) for x, y in box)
                lines.append(TextLine(text=text, score=score, box=quad))
        return lines

    def detect(self, gray: np.ndarray) -> list[np.ndarray]:
        """Text-line quadrilaterals (4x2 float32, clockwise from top left), top to bottom.

        ``det_band`` 0 runs the whole frame at once.
        """
        h, w = gray.shape[:2]
        f = min(1.0, self._det_max_side / max(h, w))
        dh, dw = max(32, round(h * f / 32) * 32), max(32, round(w * f / 32) * 32)
        small = cv2.resize(gray, (dw, dh), interpolation=cv2.INTER_AREA)
        plane = small.astype(np.float32) * (2 / 255) - 1.0  # (x / 255 - 0.5) / 0.5
        prob = np.empty((dh, dw), np.float32)
        band, margin = self._det_band, _DET_MARGIN
        if not band or dh <= band + margin:
            band = dh
        for y0 in range(0, dh, band):
            # each band with `margin` rows of context above and below (multiples of 32)
            a, b, y1 = max(0, y0 - margin), min(dh, y0 + band + margin), min(dh, y0 + band)
            batch = np.ascontiguousarray(np.broadcast_to(plane[a:b], (1, 3, b - a, dw)))
            out = self._det.run(None, {"x": batch}, self._run_opts)[0][0, 0]
            prob[y0:y1] = out[y0 - a : y1 - a]
            del batch, out
        boxes = db_boxes(prob, w / dw, h / dh)
        boxes.sort(key=lambda b: (float(b[:, 1].min()), float(b[:, 0].min())))
        return boxes

    def recognise(self, line: np.ndarray) -> tuple[str, float]:
        """Text and mean character probability of one straightened grayscale line.

        One line per run: batching lines (padded to the widest) measured slower here.
        """
        h, w = line.shape[:2]
        width = min(_REC_MAX_WIDTH, max(1, math.ceil(_REC_HEIGHT * w / max(h, 1))))
        resized = cv2.resize(line, (width, _REC_HEIGHT), interpolation=cv2.INTER_LINEAR)
        padded = np.zeros((1, 3, _REC_HEIGHT, max(width, _REC_MIN_WIDTH)), np.float32)
        padded[0, :, :, :width] = resized.astype(np.float32) * (2 / 255) - 1.0
        probs = self._rec.run(None, {"x": padded}, self._run_opts)[0][0]
        return ctc_decode(probs, self._chars)


def db_boxes(prob: np.ndarray, sx: float, sy: float) -> list[np.ndarray]:
    """DB post-processing: boxes of a text probability map, scaled by (sx, sy)."""
    bitmap = cv2.dilate((prob > _DB_THRESH).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    ph, pw = prob.shape
    boxes = []
    for contour in contours[:_MAX_BOXES]:
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
        if min(rw, rh) < _MIN_BOX_SIDE:
            continue
        corners = cv2.boxPoints(((cx, cy), (rw, rh), angle))
        if _mean_inside(prob, corners) < _DB_BOX_THRESH:
            continue
        # offsetting a rectangle by d and taking the minimum-area rectangle adds 2d per side
        d = rw * rh * _DB_UNCLIP / (2 * (rw + rh))
        if min(rw, rh) + 2 * d < _MIN_BOX_SIDE + 2:
            continue
        grown = cv2.boxPoints(((cx, cy), (rw + 2 * d, rh + 2 * d), angle))
        grown[:, 0] = np.clip(grown[:, 0], 0, pw) * sx
        grown[:, 1] = np.clip(grown[:, 1], 0, ph) * sy
        quad = _clockwise(grown)
        if np.linalg.norm(quad[0] - quad[1]) <= 3 or np.linalg.norm(quad[0] - quad[3]) <= 3:
            continue
        boxes.append(quad)
    return boxes


def _mean_inside(prob: np.ndarray, corners: np.ndarray) -> float:
    h, w = prob.shape
    x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int), 0, [w - 1, h - 1])
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [(corners - [x0, y0]).astype(np.int32)], 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def _clockwise(pts: np.ndarray) -> np.ndarray:
    """Top-left, top-right, bottom-right, bottom-left (as PaddleOCR orders them)."""
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left, right = by_x[:2], by_x[2:]
    tl, bl = left[np.argsort(left[:, 1], kind="stable")]
    tr, br = right[np.argsort(right[:, 1], kind="stable")]
    return np.array([tl, tr, br, bl], np.float32)


def ctc_decode(probs: np.ndarray, chars: list[str]) -> tuple[str, float]:
    """Greedy CTC: best class per step, repeats merged, blanks dropped; mean kept probability."""
    best = probs.argmax(axis=1)
    keep = best != 0
    keep[1:] &= best[1:] != best[:-1]
    if not keep.any():
        return "", 0.0
    text = "".join(chars[i] for i in best[keep])
    score = float(probs[np.arange(len(best)), best][keep].mean())
    return text, score
