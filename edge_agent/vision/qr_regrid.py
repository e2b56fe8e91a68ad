"""Last-resort QR pass: re-sample a located but undecodable QR symbol on a deformable grid.

Photos of a code printed on cloth or crumpled paper (the zxing-cpp ``qrcode-4`` set) are
warped: zxing-cpp finds the symbol but its perspective grid drifts off the module centres
in the middle, so Reed-Solomon gives up (checksum error). Here the symbol found with
``return_errors`` is re-sampled with a smooth displacement field fitted by coordinate ascent
(coarse to fine control meshes) so that module centres land on clearly dark or light pixels
and the fixed patterns (finders, timing, alignment) come out right. The sampled modules are
rendered as a clean image and decoded by zxing-cpp with ``is_pure``: its Reed-Solomon check
still guards against misreads.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import zxingcpp

_QR: Any = (zxingcpp.BarcodeFormat.QRCode,)  # a tuple, as in decode.FORMATS
_FINDER = np.array(
    [
        [1, 1, 1, 1, 1, 1, 1],
        [1, -1, -1, -1, -1, -1, 1],
        [1, -1, 1, 1, 1, -1, 1],
        [1, -1, 1, 1, 1, -1, 1],
        [1, -1, 1, 1, 1, -1, 1],
        [1, -1, -1, -1, -1, -1, 1],
        [1, 1, 1, 1, 1, 1, 1],
    ],
    dtype=np.float32,
)
_ALIGN = np.array(
    [
        [1, 1, 1, 1, 1],
        [1, -1, -1, -1, 1],
        [1, -1, 1, -1, 1],
        [1, -1, -1, -1, 1],
        [1, 1, 1, 1, 1],
    ],
    dtype=np.float32,
)
_MAX_VERSION = 10  # bigger symbols have several alignment patterns; not modelled here
_MESHES = ((3, 1.0), (5, 0.6), (8, 0.4))  # control nodes per side, first step in modules
_SWEEPS = 2
_BLURS = (0.2, 0.3)  # smoothing sigma in modules; the fit is sensitive to it, so try two
_MAX_CANDIDATES = 2
_PATTERN_WEIGHT = 2.0  # fixed patterns count more than data modules in the fit


@dataclass(frozen=True)
class RegridResult:
    """A QR symbol decoded by re-sampling; ``quad`` is its outline in frame coordinates."""

    barcode: zxingcpp.Barcode
    quad: tuple[tuple[int, int], ...]


def _fixed_pattern(n: int, version: int) -> np.ndarray:
    """Expected fixed modules: +1 dark, -1 light, 0 data (finders, separators, timing)."""
    e = np.zeros((n, n), np.float32)
    for r, c in ((0, 0), (0, n - 7), (n - 7, 0)):
        e[r : r + 7, c : c + 7] = _FINDER
    e[7, 0:8] = e[0:8, 7] = e[7, n - 8 :] = e[0:8, n - 8] = e[n - 8, 0:8] = e[n - 8 :, 7] = -1
    alt = np.where(np.arange(8, n - 8) % 2 == 0, 1, -1)
    e[6, 8 : n - 8] = alt
    e[8 : n - 8, 6] = alt
    if 2 <= version <= 6:  # one alignment pattern, centred 7 modules from the far corner
        a = n - 7
        e[a - 2 : a + 3, a - 2 : a + 3] = _ALIGN
    e[n - 8, 8] = 1  # the "dark module"
    return e


def _centres(quad: np.ndarray, n: int) -> np.ndarray:
    """Module centres (n, n, 2) through the homography of the symbol's outer corners."""
    src = np.array([[0, 0], [n, 0], [n, n], [0, n]], np.float32)
    h = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    u = np.arange(n, dtype=np.float32) + 0.5
    xs, ys = np.meshgrid(u, u)
    pts = np.stack([xs, ys], -1).reshape(-1, 1, 2)
    return np.asarray(cv2.perspectiveTransform(pts, h).reshape(n, n, 2), np.float32)


def _sample(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(cv2.remap(img, pts[..., 0], pts[..., 1], cv2.INTER_LINEAR), np.float32)


def _mesh_weights(n: int, k: int) -> np.ndarray:
    """Bilinear weights (n, k) of each module row/column on k control nodes."""
    g = (np.arange(n) + 0.5) / n * (k - 1)
    i0 = np.clip(np.floor(g).astype(int), 0, k - 2)
    frac = (g - i0).astype(np.float32)
    w = np.zeros((n, k), np.float32)
    w[np.arange(n), i0] = 1 - frac
    w[np.arange(n), i0 + 1] = frac
    return w


def fit_modules(
    gray: np.ndarray, quad: np.ndarray, version: int, deadline: float, blur: float = 0.25
) -> Iterator[np.ndarray]:
    """Module matrices (True = dark) after each mesh level of the grid fit, coarse first."""
    n = 17 + 4 * version
    img = gray.astype(np.float32)
    module = float(np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[3] - quad[0])) / 2 / n
    smooth = cv2.GaussianBlur(img, (0, 0), max(0.6, module * blur))
    win = int(module * 6) | 1
    local_mean = cv2.blur(img, (win, win))
    base = _centres(quad, n)
    fixed = _fixed_pattern(n, version)
    weight = np.where(fixed != 0, _PATTERN_WEIGHT, 0.0).astype(np.float32) * fixed

    def darkness(pts: np.ndarray) -> np.ndarray:
        out: np.ndarray = _sample(local_mean, pts) - _sample(smooth, pts)
        return out

    def score(pts: np.ndarray) -> float:
        # Clear modules (far from the local mean) and correct fixed patterns score high.
        d = darkness(pts)
        return float(np.abs(d).sum() + (weight * d).sum())

    disp = np.zeros((n, n, 2), np.float32)
    for k, first_step in _MESHES:
        w = _mesh_weights(n, k)
        nodes = np.zeros((k, k, 2), np.float32)

        def field(nd: np.ndarray, w: np.ndarray = w) -> np.ndarray:
            return np.asarray(np.stack([w @ nd[..., c] @ w.T for c in (0, 1)], -1), np.float32)

        step = module * first_step
        fixed_pts = base + disp
        best = score(fixed_pts)
        for _ in range(_SWEEPS):
            for a in range(k):
                for b in range(k):
                    for dx, dy in ((step, 0.0), (-step, 0.0), (0.0, step), (0.0, -step)):
                        trial = nodes.copy()
                        trial[a, b] += (dx, dy)
                        s = score(fixed_pts + field(trial))
                        if s > best:
                            best, nodes = s, trial
                if time.perf_counter() > deadline:
                    break
            step *= 0.6
        disp = disp + field(nodes)
        yield darkness(base + disp) > 0
        if time.perf_counter() > deadline:
            return


def _render(bits: np.ndarray, scale: int = 4, quiet: int = 4) -> np.ndarray:
    img = np.pad(np.where(bits, 0, 255).astype(np.uint8), quiet, constant_values=255)
    return np.asarray(cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST))


def _quad(b: zxingcpp.Barcode) -> np.ndarray:
    p = b.position
    corners = (p.top_left, p.top_right, p.bottom_right, p.bottom_left)
    return np.array([[c.x, c.y] for c in corners], np.float32)


def _candidates(gray: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """QR symbols zxing-cpp located but could not decode, biggest first."""
    found = zxingcpp.read_barcodes(gray, formats=_QR, try_rotate=False, return_errors=True)
    out = []
    for b in found:
        extra = b.extra if isinstance(b.extra, dict) else {}
        version = str(extra.get("Version", ""))
        if b.valid or not version.isdigit() or not 1 <= int(version) <= _MAX_VERSION:
            continue
        quad = _quad(b)
        if cv2.contourArea(quad) < 21 * 21 * 4:  # below 2 px per module: hopeless
            continue
        out.append((quad, int(version)))
    out.sort(key=lambda qv: -cv2.contourArea(qv[0]))
    return out[:_MAX_CANDIDATES]


def _decode_candidate(
    gray: np.ndarray, quad: np.ndarray, version: int, deadline: float
) -> zxingcpp.Barcode | None:
    for blur in _BLURS:
        for bits in fit_modules(gray, quad, version, deadline, blur):
            # With is_pure zxing-cpp also returns symbols that failed the checksum.
            for b in zxingcpp.read_barcodes(
                _render(bits),
                formats=_QR,
                text_mode=zxingcpp.TextMode.Plain,
                is_pure=True,
            ):
                if b.valid:
                    return b
        if time.perf_counter() > deadline:
            break
    return None


def regrid_qr(gray: np.ndarray, budget_ms: float) -> list[RegridResult]:
    """Decode QR symbols located but not decoded in ``gray`` by deformable re-sampling."""
    deadline = time.perf_counter() + budget_ms / 1000
    for quad, version in _candidates(gray):
        if time.perf_counter() > deadline:
            break
        found = _decode_candidate(gray, quad, version, deadline)
        if found is not None:
            corners = tuple((round(float(x)), round(float(y))) for x, y in quad)
            return [RegridResult(barcode=found, quad=corners)]
    return []
