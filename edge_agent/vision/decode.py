"""Multi-pass barcode decoding with zxing-cpp: QR, Micro QR, Data Matrix, Code 128/39, EAN-13.

Passes run cheapest-first on a grayscale frame. Decoding stops at the first pass that yields a
code identifying the pack (GB/T 34014 code or passport id); when a pass only yields other
codes (plain text, GS1, 15434) a few more passes still run, in case the label also carries a
harder-to-read pack code. Every distinct code found on the way is returned.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import zxingcpp

from edge_agent.codes import IDENTITY_KINDS, ParsedCode, parse_identifier
from edge_agent.vision.bar_rectify import read_bars
from edge_agent.vision.qr_regrid import regrid_qr

Gray = np.ndarray
Points = tuple[tuple[int, int], ...]

FORMATS: Any = (  # a tuple: the "|" operator on formats is deprecated
    zxingcpp.BarcodeFormat.QRCode,
    zxingcpp.BarcodeFormat.MicroQRCode,
    zxingcpp.BarcodeFormat.DataMatrix,
    zxingcpp.BarcodeFormat.Code128,
    zxingcpp.BarcodeFormat.Code39,
    zxingcpp.BarcodeFormat.EAN13,
)
_SYMBOLOGY = {
    zxingcpp.BarcodeFormat.QRCode: "QRCode",
    zxingcpp.BarcodeFormat.MicroQRCode: "MicroQRCode",
    zxingcpp.BarcodeFormat.DataMatrix: "DataMatrix",
    zxingcpp.BarcodeFormat.Code128: "Code128",
    zxingcpp.BarcodeFormat.Code39: "Code39",
    zxingcpp.BarcodeFormat.EAN13: "EAN13",
}
_UPSCALE_MAX_SIDE = 1000  # upscaling passes only help small symbols in small frames
REGRID_NAME = "qr-regrid"  # last resort for a located but undecodable (warped) QR symbol
_REGRID_MAX_MS = 400.0
BARS_NAME = "bar-rectify"  # sheared, blurred or glared 1D codes; runs only if nothing was read
# It runs after the last 1D-specific pass rather than after all of them: on a frame nothing
# reads, the remaining passes (small symbols, dot-peen, 45 degrees) would otherwise spend
# the per-frame budget first (Code 128, level 1.0, 1500 ms: 7/30 read at the end, 27/30 here).
_BARS_AFTER = "deskew-region"
_BARS_MAX_MS = 800.0  # typically 80-200 ms; room for a loaded machine


@dataclass(frozen=True, kw_only=True)
class DecodedSymbol:
    """One decoded symbol with its place in the original frame and the pass that found it."""

    symbology: str
    text: str
    parsed: ParsedCode
    position: Points
    decode_pass: str


@dataclass(frozen=True, kw_only=True)
class DecodeResult:
    """All symbols found in one frame and the passes that ran."""

    symbols: tuple[DecodedSymbol, ...]
    passes_run: tuple[str, ...]
    duration_ms: float

    @property
    def identified(self) -> bool:
        """True when a symbol identifies the pack (GB/T 34014 code or passport id)."""
        return any(s.parsed.kind in IDENTITY_KINDS for s in self.symbols)


# A preprocessing step returns the image to decode and a 2x3 affine mapping its
# coordinates back to the original frame (None = identity).
Prep = Callable[[Gray], tuple[Gray, np.ndarray | None]]


@dataclass(frozen=True)
class DecodePass:
    """A named preprocessing step plus zxing-cpp binarizer."""

    name: str
    prep: Prep
    binarizer: zxingcpp.Binarizer = zxingcpp.Binarizer.LocalAverage
    small_only: bool = False  # skip on frames larger than _UPSCALE_MAX_SIDE


def _identity(g: Gray) -> tuple[Gray, np.ndarray | None]:
    return g, None


def _scale(factor: float) -> Prep:
    def prep(g: Gray) -> tuple[Gray, np.ndarray | None]:
        interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
        out = cv2.resize(g, None, fx=factor, fy=factor, interpolation=interp)
        back = np.array([[1 / factor, 0, 0], [0, 1 / factor, 0]], dtype=np.float64)
        return out, back

    return prep


def _clahe(g: Gray) -> tuple[Gray, np.ndarray | None]:
    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(g), None


def _blur(g: Gray) -> tuple[Gray, np.ndarray | None]:
    # Dot-peen Data Matrix: blurring merges the dots into solid modules.
    return cv2.GaussianBlur(g, (5, 5), 0), None


def _dots(g: Gray) -> tuple[Gray, np.ndarray | None]:
    # Grow dark dots (erode = min filter), then smooth: another dot-peen remedy.
    return cv2.GaussianBlur(cv2.erode(g, np.ones((3, 3), np.uint8)), (3, 3), 0), None


def _adaptive(g: Gray) -> tuple[Gray, np.ndarray | None]:
    out = cv2.adaptiveThreshold(g, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 31, 2)
    return out, None


def _rotate(angle: float) -> Prep:
    def prep(g: Gray) -> tuple[Gray, np.ndarray | None]:
        h, w = g.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        cos, sin = abs(m[0, 0]), abs(m[0, 1])
        nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
        m[0, 2] += nw / 2 - w / 2
        m[1, 2] += nh / 2 - h / 2
        out = cv2.warpAffine(g, m, (nw, nh), borderMode=cv2.BORDER_REPLICATE)
        return out, cv2.invertAffineTransform(m)

    return prep


def _tensor_blocks(g: Gray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Structure tensor (jxx, jyy, jxy) per 16x16 block at <= 640 px, and the symbol blocks.

    Symbol blocks are strongly textured and coherent (parallel edges): bars and modules.
    Text is less coherent and plain areas have no energy.
    """
    f = 640 / max(g.shape)
    small = g if f >= 1 else cv2.resize(g, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    size = (max(1, small.shape[1] // 16), max(1, small.shape[0] // 16))
    jxx = cv2.resize(gx * gx, size, interpolation=cv2.INTER_AREA)
    jyy = cv2.resize(gy * gy, size, interpolation=cv2.INTER_AREA)
    jxy = cv2.resize(gx * gy, size, interpolation=cv2.INTER_AREA)
    energy = jxx + jyy
    coherence = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (energy + 1e-6)
    pick = (coherence > 0.6) & (energy > 0) & (energy >= np.percentile(energy, 90))
    return jxx, jyy, jxy, pick.astype(np.uint8)


def _bars_angle(g: Gray) -> float:
    """Mean gradient orientation (degrees) of the symbol blocks: the normal of 1D bars."""
    jxx, jyy, jxy, pick = _tensor_blocks(g)
    sel = pick > 0
    if not sel.any():
        return 0.0
    a2 = np.arctan2(2 * jxy[sel], jxx[sel] - jyy[sel])  # doubled: orientation is mod 180
    w = (jxx + jyy)[sel]
    return float(np.degrees(np.arctan2((w * np.sin(a2)).sum(), (w * np.cos(a2)).sum()) / 2))


def _region_angle(g: Gray) -> float:
    """Long-axis angle (degrees) of the biggest cluster of symbol blocks.

    Under perspective shear the bars' normal is not the scan direction; the shape is.
    """
    pick = _tensor_blocks(g)[3]
    if not pick.any():
        return 0.0
    _, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(pick, np.ones((3, 3))))
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    ys, xs = np.nonzero((labels == best) & (pick > 0))
    if len(xs) < 3:
        return 0.0
    (_, _), (w, h), angle = cv2.minAreaRect(np.column_stack([xs, ys]).astype(np.float32))
    angle = float(angle) if w >= h else float(angle) - 90.0
    return (angle + 90.0) % 180.0 - 90.0


def _deskew(estimate: Callable[[Gray], float]) -> Prep:
    # zxing scans 1D codes along rows and tolerates only a small tilt (try_rotate covers
    # 90 degree steps only), so rotate the estimated tilt away.
    def prep(g: Gray) -> tuple[Gray, np.ndarray | None]:
        angle = estimate(g)
        if abs(angle) < 4 or abs(abs(angle) - 90) < 4:
            return g, None
        return _rotate(angle)(g)

    return prep


#: Default pass order: measured on the zxing-cpp samples, most productive first.
DEFAULT_PASSES: tuple[DecodePass, ...] = (
    DecodePass("plain", _identity),
    DecodePass("global", _identity, zxingcpp.Binarizer.GlobalHistogram),
    DecodePass("clahe", _clahe),
    DecodePass("down0.75-global", _scale(0.75), zxingcpp.Binarizer.GlobalHistogram),
    DecodePass("deskew-bars", _deskew(_bars_angle)),
    DecodePass("deskew-region", _deskew(_region_angle)),
    DecodePass("up2", _scale(2.0), small_only=True),
    DecodePass("up1.25", _scale(1.25), small_only=True),
    DecodePass("blur", _blur),
    DecodePass("dots", _dots),
    DecodePass("adaptive", _adaptive),
    DecodePass("rot45", _rotate(45.0)),
    DecodePass("fixed", _identity, zxingcpp.Binarizer.FixedThreshold),
)
PASS_NAMES = (*(p.name for p in DEFAULT_PASSES), BARS_NAME, REGRID_NAME)


def to_gray(image: np.ndarray) -> Gray:
    """Grayscale uint8 view of a BGR, BGRA or gray frame."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _points(barcode: zxingcpp.Barcode, back: np.ndarray | None) -> Points:
    p = barcode.position
    pts = np.array(
        [[c.x, c.y] for c in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)],
        dtype=np.float64,
    )
    if back is not None:
        pts = pts @ back[:, :2].T + back[:, 2]
    return tuple((round(x), round(y)) for x, y in pts)


def _symbol(b: zxingcpp.Barcode, position: Points, pass_name: str) -> DecodedSymbol:
    gs1 = b.content_type == zxingcpp.ContentType.GS1
    return DecodedSymbol(
        symbology=_SYMBOLOGY.get(b.format, str(b.format).rsplit(".", 1)[-1]),
        text=b.text,
        parsed=parse_identifier(b.text, gs1_hint=gs1),
        position=position,
        decode_pass=pass_name,
    )


def run_pass(gray: Gray, step: DecodePass) -> list[DecodedSymbol]:
    """Run one pass and return its symbols in original-frame coordinates."""
    image, back = step.prep(gray)
    found = zxingcpp.read_barcodes(
        image, formats=FORMATS, text_mode=zxingcpp.TextMode.Plain, binarizer=step.binarizer
    )
    return [_symbol(b, _points(b, back), step.name) for b in found]


def run_regrid(gray: Gray, budget_ms: float) -> list[DecodedSymbol]:
    """Last-resort pass: QR symbols located but not decoded, re-sampled on a fitted grid."""
    return [_symbol(r.barcode, r.quad, REGRID_NAME) for r in regrid_qr(gray, budget_ms)]


def run_bars(gray: Gray, budget_ms: float) -> list[DecodedSymbol]:
    """Late pass: 1D symbols rectified to an upright strip (see ``bar_rectify``)."""
    return [_symbol(r.barcode, r.quad, BARS_NAME) for r in read_bars(gray, budget_ms)]


def _late_budget(cap: float, budget_ms: float | None, elapsed: float) -> float:
    return cap if budget_ms is None else min(cap, budget_ms - elapsed)


def _late_bars(
    gray: Gray, budget_ms: float | None, start: float, ran: list[str], cap: float
) -> list[DecodedSymbol]:
    left = _late_budget(cap, budget_ms, (time.perf_counter() - start) * 1000)
    if left <= 0:
        return []
    ran.append(BARS_NAME)
    return run_bars(gray, left)


def decode_gray(
    gray: Gray,
    *,
    passes: Sequence[DecodePass] = DEFAULT_PASSES,
    passes_after_text: int = 2,
    budget_ms: float | None = None,
    regrid: bool = True,
    bars: bool = True,
    time_caps: bool = True,
) -> DecodeResult:
    """Decode one grayscale frame with the multi-pass strategy (see module docstring).

    The late passes stop after a wall-clock cap of their own; ``time_caps=False`` lifts the
    caps (not ``budget_ms``), so what is read does not depend on how busy the machine is."""
    start = time.perf_counter()
    bars_cap = _BARS_MAX_MS if time_caps else math.inf
    regrid_cap = _REGRID_MAX_MS if time_caps else math.inf
    found: dict[tuple[str, str], DecodedSymbol] = {}
    ran: list[str] = []
    remaining_after_text: int | None = None
    large = max(gray.shape[:2]) > _UPSCALE_MAX_SIDE
    for step in passes:
        if step.small_only and large:
            continue
        if ran and budget_ms is not None and (time.perf_counter() - start) * 1000 > budget_ms:
            break
        ran.append(step.name)
        for sym in run_pass(gray, step):
            found.setdefault((sym.symbology, sym.text), sym)
        if bars and not found and step.name == _BARS_AFTER:
            for sym in _late_bars(gray, budget_ms, start, ran, bars_cap):
                found.setdefault((sym.symbology, sym.text), sym)
        if any(s.parsed.kind in IDENTITY_KINDS for s in found.values()):
            break
        if found:
            remaining_after_text = (
                passes_after_text if remaining_after_text is None else remaining_after_text - 1
            )
            if remaining_after_text <= 0:
                break
    elapsed = (time.perf_counter() - start) * 1000
    # Only when every pass failed on QR: a cheap located-but-undecodable check comes first,
    # so frames without a QR-like symbol pay one extra zxing-cpp call.
    if regrid and not any(
        s.parsed.kind in IDENTITY_KINDS or s.symbology == "QRCode" for s in found.values()
    ):
        left = _late_budget(regrid_cap, budget_ms, elapsed)
        if left > 0:
            ran.append(REGRID_NAME)
            for sym in run_regrid(gray, left):
                found.setdefault((sym.symbology, sym.text), sym)
        elapsed = (time.perf_counter() - start) * 1000
    if bars and not found and BARS_NAME not in ran:  # custom pass lists without _BARS_AFTER
        for sym in _late_bars(gray, budget_ms, start, ran, bars_cap):
            found.setdefault((sym.symbology, sym.text), sym)
        elapsed = (time.perf_counter() - start) * 1000
    return DecodeResult(symbols=tuple(found.values()), passes_run=tuple(ran), duration_ms=elapsed)


def decode_single_pass(gray: Gray) -> list[str]:
    """Baseline: one zxing-cpp call with default options (all formats, HRI text), texts only."""
    return [b.text for b in zxingcpp.read_barcodes(gray)]
