"""Offline text recognition of nameplates: one engine seam, backends registered by name.

``get_engine("ppocr")`` loads the engine once per process (models come inside the installed
package; nothing is downloaded) and returns it; ``engine.read(gray)`` gives text lines with
their boxes in the image's coordinates and a 0..1 score. Backends:

- ``ppocr``: the same PP-OCRv6 det/rec models run directly on onnxruntime with bounded inputs
  and lean sessions (``edge_agent/vision/ocr_ppocr.py``; about 0.6x RapidOCR's memory in ``run``; default).
- ``rapidocr``: RapidOCR 3 on onnxruntime with the PP-OCRv6 det/rec models in its wheel.
- ``tesseract``: Tesseract 5 (Debian ``tesseract-ocr`` + ``-chi-sim`` + ``-eng``) via pytesseract.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edge_agent.errors import OcrError

Points = tuple[tuple[int, int], ...]
_DET_MAX_SIDE = 1024  # text detection input
_MAX_SIDE = 1600  # detection input; larger frames are downscaled (speed, and boxes map back)


@dataclass(frozen=True, kw_only=True)
class TextLine:
    """One recognised line: text, 0..1 confidence and corner points in the image."""

    text: str
    score: float
    box: Points


class OcrEngine(ABC):
    """A text recogniser; backends override ``_read`` on a grayscale image."""

    name = ""

    def read(self, gray: np.ndarray, *, budget_ms: float | None = None) -> list[TextLine]:
        """Text lines of a grayscale image, top to bottom; OcrError if the engine fails.

        With ``budget_ms`` the engine stops recognising lines once the budget is spent and
        returns the lines read so far.
        """
        deadline = None if budget_ms is None else time.perf_counter() + budget_ms / 1000
        scale = min(1.0, _MAX_SIDE / max(gray.shape[:2]))
        image = gray
        if scale < 1.0:
            image = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        try:
            lines = self._read(image, deadline)
        except OcrError:
            raise
        except Exception as exc:  # library errors are translated at the seam
            raise OcrError(f"{self.name} failed: {exc}") from exc
        if scale < 1.0:
            lines = [
                TextLine(
                    text=ln.text,
                    score=ln.score,
                    box=tuple((round(x / scale), round(y / scale)) for x, y in ln.box),
                )
                for ln in lines
            ]
        return sorted(lines, key=lambda ln: (min(p[1] for p in ln.box), ln.box[0][0]))

    @abstractmethod
    def _read(self, gray: np.ndarray, deadline: float | None) -> list[TextLine]: ...


class RapidOcrEngine(OcrEngine):
    """RapidOCR on onnxruntime, with the models bundled in the ``rapidocr`` wheel."""

    name = "rapidocr"

    def __init__(self, *, threads: int = 2) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise OcrError("rapidocr is not installed: pip install rapidocr onnxruntime") from exc
        # No angle classifier: the label is photographed upright within about +-45 degrees,
        # and detection returns rotated boxes that recognition straightens.
        self._lock = threading.Lock()
        self._det_times: deque[float] = deque(maxlen=5)  # recent detections (first one skipped)
        self._calls = 0
        self._engine: Any = RapidOCR(
            params={
                "Global.use_cls": False,
                "Global.log_level": "warning",
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )

    @property
    def det_s(self) -> float:
        """Typical detection time (median of recent runs): a deadline must leave room for it."""
        return float(np.median(self._det_times)) if self._det_times else 0.0

    def _read(self, gray: np.ndarray, deadline: float | None) -> list[TextLine]:
        # Detection, then recognition line by line so a deadline can stop between lines.
        bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        f = min(1.0, _DET_MAX_SIDE / max(gray.shape[:2]))  # detect small, recognise full size
        small = bgr if f >= 1 else cv2.resize(bgr, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        with self._lock:  # RapidOCR keeps per-call parameters on the instance
            det_s = self.det_s
            if deadline is not None and time.perf_counter() + det_s > deadline:
                raise OcrError(f"OCR budget too small for detection (takes {det_s * 1000:.0f} ms)")
            started = time.perf_counter()
            det = self._engine(small, use_det=True, use_cls=False, use_rec=False)
            self._calls += 1
            if self._calls > 1:  # the first run includes onnxruntime's warm-up
                self._det_times.append(time.perf_counter() - started)
            boxes = [] if det.boxes is None else [np.asarray(b, np.float32) / f for b in det.boxes]
            boxes.sort(key=lambda b: (float(b[:, 1].min()), float(b[:, 0].min())))
            lines = []
            for box in boxes:
                if deadline is not None and time.perf_counter() > deadline:
                    break
                rec = self._engine(crop_line(bgr, box), use_det=False, use_cls=False, use_rec=True)
                if not rec.txts or not rec.scores:
                    continue
                text, score = str(rec.txts[0]), float(rec.scores[0])
                if text and score >= 0.5:
                    quad = tuple((round(float(x)), round(float(y))) for x, y in box)
                    lines.append(TextLine(text=text, score=score, box=quad))
            return lines


class TesseractEngine(OcrEngine):
    """Tesseract 5 from Debian (chi_sim + eng) through pytesseract; lines from image_to_data."""

    name = "tesseract"

    def __init__(self, *, lang: str = "chi_sim+eng") -> None:
        try:
            import pytesseract
        except ImportError as exc:
            raise OcrError("pytesseract is not installed: pip install pytesseract") from exc
        try:
            langs = set(pytesseract.get_languages(config=""))
        except Exception as exc:  # binary missing
            raise OcrError(f"tesseract is not installed: {exc}") from exc
        missing = set(lang.split("+")) - langs
        if missing:
            raise OcrError(f"tesseract languages missing: {', '.join(sorted(missing))}")
        self._tess: Any = pytesseract
        self._lang = lang

    def _read(self, gray: np.ndarray, deadline: float | None) -> list[TextLine]:
        # pytesseract kills the process at its timeout (RuntimeError, translated by read())
        timeout = 0 if deadline is None else max(0.05, deadline - time.perf_counter())
        data = self._tess.image_to_data(
            gray,
            lang=self._lang,
            config="--psm 3",
            output_type=self._tess.Output.DICT,
            timeout=timeout,
        )
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i, word in enumerate(data["text"]):
            if str(word).strip() and float(data["conf"][i]) >= 0:
                key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
                groups.setdefault(key, []).append(i)
        lines = []
        for idx in groups.values():
            # chi_sim puts spaces between Chinese characters; keep them between Latin words
            text = _join_words([str(data["text"][i]) for i in idx])
            x0 = min(data["left"][i] for i in idx)
            y0 = min(data["top"][i] for i in idx)
            x1 = max(data["left"][i] + data["width"][i] for i in idx)
            y1 = max(data["top"][i] + data["height"][i] for i in idx)
            score = float(np.mean([float(data["conf"][i]) for i in idx])) / 100
            lines.append(
                TextLine(text=text, score=score, box=((x0, y0), (x1, y0), (x1, y1), (x0, y1)))
            )
        return lines


def crop_line(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The text line inside a detected quadrilateral, straightened."""
    w = int(max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3])))
    h = int(max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2])))
    w, h = max(w, 4), max(h, 4)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    m = cv2.getPerspectiveTransform(box.astype(np.float32), dst)
    out: np.ndarray = cv2.warpPerspective(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    if h / w >= 1.5:
        out = np.rot90(out)
    return out


def _join_words(words: list[str]) -> str:
    out = ""
    for w in words:
        if out and (out[-1].isascii() or w[0].isascii()):
            out += " "
        out += w
    return out


def _ppocr() -> OcrEngine:
    from edge_agent.vision.ocr_ppocr import PpOcrEngine  # imports this module

    return PpOcrEngine()


ENGINES: dict[str, Callable[[], OcrEngine]] = {
    "ppocr": _ppocr,
    "rapidocr": RapidOcrEngine,
    "tesseract": TesseractEngine,
}
_loaded: dict[str, OcrEngine] = {}
_lock = threading.Lock()


def get_engine(name: str) -> OcrEngine:
    """The named engine, loaded once per process (OcrError when unknown or not installed)."""
    with _lock:
        engine = _loaded.get(name)
        if engine is None:
            factory = ENGINES.get(name)
            if factory is None:
                raise OcrError(f"unknown OCR engine {name!r}; use {', '.join(ENGINES)}")
            engine = _loaded[name] = factory()
        return engine
