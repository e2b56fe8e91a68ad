"""Late decode pass for hard 1D codes: find the bars, rectify them to an upright strip, decode.

Under perspective shear the bars are not perpendicular to the scan direction, blur and noise
wash out narrow bars, and glare shifts the black point along the code: zxing-cpp's row scan
then fails even after a rotation. This pass

1. locates bar regions: pixels with a strong, coherent gradient (structure tensor), grouped
   by gradient orientation so a label border next to the bars does not merge with them, kept
   when the gradient runs along the region's long axis (bars, not a single line);
2. samples the region into a strip whose x axis is the scan direction and whose columns
   follow the bars (a shear, not a rotation), then straightens the remaining tilt, which
   changes along the code under perspective (fitted per segment, linear in x);
3. decodes the strip, then 1D profiles averaged over horizontal bands of it (several
   scanline groups, so mild curvature or a smudge only spoils some), each with the black and
   white level followed locally (glare, low contrast) and an unsharp mask (blur).

Averaging along the bars is what defeats noise; only decoders with a checksum run here, and
every text still goes through the caller's validation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import zxingcpp

Gray = np.ndarray
Quad = tuple[tuple[int, int], ...]

BAR_FORMATS: Any = (  # 1D codes with a check character (Code 39's is optional)
    zxingcpp.BarcodeFormat.Code128,
    zxingcpp.BarcodeFormat.Code39,
    zxingcpp.BarcodeFormat.EAN13,
)
_SCALE = 0.5  # region search runs at half size
_WINDOW = 11  # structure tensor window (half-size pixels)
_BINS = 12  # gradient orientation bins (15 degrees each, +-15 degrees overlap)
_MAX_REGIONS = 3
_MIN_SIDE = 16  # smaller frames hold no readable bar code (and vanish at half size)
_UPX = 2.0  # strip samples per frame pixel along the scan direction
_MODULE_PX = 3.0  # typical narrow bar in the frame: sets the level-tracking window
_BINARIZERS = (zxingcpp.Binarizer.LocalAverage, zxingcpp.Binarizer.GlobalHistogram)


@dataclass(frozen=True, kw_only=True)
class BarRegion:
    """A candidate bar area in frame coordinates."""

    centre: tuple[float, float]
    length: float  # along the scan direction
    height: float  # across it
    scan_deg: float  # direction of the region's long axis
    normal_deg: float  # mean gradient direction: the bars' normal


@dataclass(frozen=True, kw_only=True)
class BarRead:
    """A decoded 1D symbol, its outline in the frame and how it was read."""

    barcode: zxingcpp.Barcode
    quad: Quad
    how: str


def _tensor(gray: Gray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    small = cv2.resize(gray, None, fx=_SCALE, fy=_SCALE, interpolation=cv2.INTER_AREA)
    small = small.astype(np.float32)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    k = (_WINDOW, _WINDOW)
    return cv2.blur(gx * gx, k), cv2.blur(gy * gy, k), cv2.blur(gx * gy, k)


def find_bar_regions(gray: Gray) -> list[BarRegion]:
    """Bar-like regions, biggest first (at most a few)."""
    if min(gray.shape[:2]) < _MIN_SIDE:
        return []
    jxx, jyy, jxy = _tensor(gray)
    energy = jxx + jyy
    coherence = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (energy + 1e-6)
    strong = (coherence > 0.5) & (energy > 0.2 * np.percentile(energy, 99.5))
    orientation = (np.degrees(0.5 * np.arctan2(2 * jxy, jxx - jyy)) + 180) % 180
    width = 180 / _BINS
    found: list[tuple[float, BarRegion]] = []
    for i in range(_BINS):
        centre_deg = i * width
        off = np.abs((orientation - centre_deg + 90) % 180 - 90)
        mask = (strong & (off <= width)).astype(np.uint8)
        if mask.sum() < 150:
            continue
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            area = cv2.contourArea(contour)
            if area < 300:
                continue
            (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
            long_deg = angle if w >= h else angle + 90
            length, height = max(w, h), min(w, h)
            # bars: the gradient runs along the long axis (up to a strong shear)
            if length < 40 or height < 8 or abs((centre_deg - long_deg + 90) % 180 - 90) > 50:
                continue
            normal = _mean_orientation(jxx, jyy, jxy, ((cx, cy), (length, height), long_deg))
            region = BarRegion(
                centre=(cx / _SCALE, cy / _SCALE),
                length=length / _SCALE,
                height=height / _SCALE,
                scan_deg=long_deg,
                normal_deg=normal,
            )
            found.append((area, region))
    found.sort(key=lambda item: -item[0])
    kept: list[BarRegion] = []
    for _, r in found:  # neighbouring orientation bins find the same bars again
        if all(
            np.hypot(r.centre[0] - k.centre[0], r.centre[1] - k.centre[1]) > 0.3 * k.length
            for k in kept
        ):
            kept.append(r)
    return kept[:_MAX_REGIONS]


def _mean_orientation(
    jxx: np.ndarray, jyy: np.ndarray, jxy: np.ndarray, rect: tuple[Any, Any, float]
) -> float:
    mask = np.zeros(jxx.shape, np.uint8)
    cv2.fillPoly(mask, [cv2.boxPoints(rect).astype(np.int32)], 1)
    sel = mask > 0
    return float(np.degrees(0.5 * np.arctan2(2 * jxy[sel].sum(), (jxx[sel] - jyy[sel]).sum())))


def _axes(region: BarRegion) -> tuple[np.ndarray, np.ndarray]:
    """Scan direction u and the step b that moves one pixel across while following a bar."""
    th, ga = np.deg2rad(region.scan_deg), np.deg2rad(region.normal_deg)
    u = np.array([np.cos(th), np.sin(th)])
    normal = np.array([np.cos(ga), np.sin(ga)])
    across = np.array([-u[1], u[0]])
    bar = np.array([-normal[1], normal[0]])
    if bar @ across < 0:
        bar = -bar
    return u, bar / max(bar @ across, 0.3)  # shear beyond ~70 degrees is not a bar code


def rectify(gray: Gray, region: BarRegion) -> tuple[Gray, np.ndarray]:
    """Strip with the scan direction along x and the bars vertical; and its frame mapping.

    The mapping is a 2x3 affine taking strip (x, y) to frame coordinates.
    """
    u, b = _axes(region)
    span = region.length * 1.24 + 30  # quiet zones and a region found a little short
    rows = max(8, int(region.height * 0.9))
    cols = int(span * _UPX)
    back = np.array(
        [
            [u[0] / _UPX, b[0], region.centre[0] - span / 2 * u[0] - rows / 2 * b[0]],
            [u[1] / _UPX, b[1], region.centre[1] - span / 2 * u[1] - rows / 2 * b[1]],
        ]
    )
    strip = cv2.warpAffine(
        gray,
        back,
        (cols, rows),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return straighten(strip), back


def straighten(strip: Gray, segments: int = 12) -> Gray:
    """Remove the bars' remaining tilt, fitted as a linear function of x (perspective)."""
    smooth = cv2.GaussianBlur(strip.astype(np.float32), (0, 0), 2)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    rows, cols = strip.shape
    xs, tilts, weights = [], [], []
    for i in range(segments):
        a, b = i * cols // segments, (i + 1) * cols // segments
        sx, sy = gx[:, a:b], gy[:, a:b]
        jxx, jyy, jxy = float((sx * sx).sum()), float((sy * sy).sum()), float((sx * sy).sum())
        energy = jxx + jyy
        coherence = np.hypot(jxx - jyy, 2 * jxy) / (energy + 1e-6)
        angle = 0.5 * np.arctan2(2 * jxy, jxx - jyy)  # gradient angle, 0 for upright bars
        if coherence > 0.5 and abs(angle) < np.deg2rad(40):
            xs.append((a + b) / 2)
            tilts.append(np.tan(angle))
            weights.append(np.sqrt(energy) * coherence)
    if len(xs) < 2:
        return strip
    fit = np.polyfit(xs, tilts, 1, w=weights)
    x, y = np.meshgrid(np.arange(cols, dtype=np.float32), np.arange(rows, dtype=np.float32))
    map_x = (x - (y - rows / 2) * np.polyval(fit, x)).astype(np.float32)
    out: Gray = cv2.remap(strip, map_x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def _blur1d(p: np.ndarray, sigma: float) -> np.ndarray:
    row = p.reshape(1, -1).astype(np.float32)
    out: np.ndarray = cv2.GaussianBlur(
        row, (0, 0), sigmaX=sigma, sigmaY=0.01, borderType=cv2.BORDER_REPLICATE
    ).ravel()
    return out


def _envelope(p: np.ndarray, window: int, *, upper: bool) -> np.ndarray:
    row = p.reshape(1, -1).astype(np.float32)
    kernel = np.ones((1, window), np.uint8)
    op = cv2.dilate if upper else cv2.erode
    return _blur1d(op(row, kernel, borderType=cv2.BORDER_REPLICATE).ravel(), window / 3)


def _deconvolve(p: np.ndarray, sigma: float, iterations: int) -> np.ndarray:
    """Richardson-Lucy deconvolution with a Gaussian blur of ``sigma`` (1D, cheap)."""
    observed = 0.1 + p  # strictly positive
    estimate = observed.copy()
    for _ in range(iterations):
        ratio = observed / np.maximum(_blur1d(estimate, sigma), 1e-4)
        estimate = estimate * _blur1d(ratio, sigma)
    return estimate


def profile_variants(profile: np.ndarray, module_px: float) -> Iterator[tuple[str, np.ndarray]]:
    """The band profile with local black/white levels, then sharpened or deconvolved.

    Ordered by how many simulator labels each read first (sigmas in strip pixels, about one
    to two modules of blur).
    """
    window = max(3, int(12 * module_px))
    hi = _envelope(profile, window, upper=True)
    lo = _envelope(profile, window, upper=False)
    norm = np.clip((profile - lo) / np.maximum(hi - lo, 1e-3), 0, 1)
    for sigma, gain in ((4, 2), (3, 2), (2, 4)):
        yield f"sharp{sigma}x{gain}", norm + gain * (norm - _blur1d(norm, sigma))
    yield "rl3x10", _deconvolve(norm, 3, 10)
    yield "rl3x30", _deconvolve(norm, 3, 30)
    yield "norm", norm
    yield "sharp5x1", norm + (norm - _blur1d(norm, 5))


def _bands(strip: Gray) -> Iterator[tuple[str, np.ndarray]]:
    rows = strip.shape[0]
    for parts in (1, 2, 3):
        step = rows // parts
        for i in range(parts):
            band = strip[i * step : (i + 1) * step].astype(np.float32)
            yield f"{parts}.{i}", band.mean(axis=0)


def _as_image(profile: np.ndarray) -> Gray:
    p = np.clip(profile, -0.5, 1.5)
    p = (p - p.min()) / max(1e-6, float(p.max() - p.min())) * 255
    return np.tile(p.astype(np.uint8), (20, 1))


def _decode(image: Gray) -> list[zxingcpp.Barcode]:
    for binarizer in _BINARIZERS:
        found = zxingcpp.read_barcodes(
            image,
            formats=BAR_FORMATS,
            try_rotate=False,
            text_mode=zxingcpp.TextMode.Plain,
            binarizer=binarizer,
        )
        if found:
            return list(found)
    return []


def _quad(barcode: zxingcpp.Barcode, back: np.ndarray, rows: int) -> Quad:
    p = barcode.position
    xs = [c.x for c in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)]
    x0, x1 = min(xs), max(xs)
    corners = np.array([[x0, 0], [x1, 0], [x1, rows], [x0, rows]], dtype=np.float64)
    frame = corners @ back[:, :2].T + back[:, 2]
    return tuple((round(x), round(y)) for x, y in frame)


def read_bars(gray: Gray, budget_ms: float) -> list[BarRead]:
    """Decode 1D symbols the row scan missed; stops at the first region that reads.

    A strip read is taken as is (zxing-cpp already wants two rows to agree). A profile read
    counts only when two different bands give the same text and no other text has as many:
    the sharpened and deconvolved profiles can misread one band, and a miss is better than a
    wrong code.
    """
    start = time.perf_counter()
    for index, region in enumerate(find_bar_regions(gray)):
        strip, back = rectify(gray, region)
        rows = strip.shape[0]
        found = _decode(strip)
        if found:
            return [BarRead(barcode=b, quad=_quad(b, back, rows), how="strip") for b in found]
        votes: dict[str, set[str]] = {}
        for band, profile in _bands(strip):
            for name, variant in profile_variants(profile, _MODULE_PX * _UPX):
                if (time.perf_counter() - start) * 1000 > budget_ms:
                    return []
                found = _decode(_as_image(variant))
                for barcode in found:
                    votes.setdefault(barcode.text, set()).add(band)
                    if _confirmed(votes, barcode.text):
                        quad = _quad(barcode, back, rows)
                        how = f"region{index}-band{band}-{name}"
                        return [BarRead(barcode=barcode, quad=quad, how=how)]
                if found:
                    break  # next band: agreement between bands is what counts
    return []


def _confirmed(votes: dict[str, set[str]], text: str) -> bool:
    mine = len(votes[text])
    return mine >= 2 and all(len(v) < mine for t, v in votes.items() if t != text)
