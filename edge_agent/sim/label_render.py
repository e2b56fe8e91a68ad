"""Label simulator: renders a pack label with a GB/T 34014 code and degrades it with a seed.

In-process API::

    img = render_label("001PBS1000000AA3A0000123", "qr", seed=7, degrade=0.5)  # BGR uint8

``symbology`` is ``qr``, ``datamatrix`` or ``code128`` (zxing-cpp's writer draws the symbol), or one
of the other 1D codes ``code39`` and ``ean13`` (12 digits; the check digit is added), which
``write_labels(symbology="mixed")`` leaves out.
``degrade`` in 0..1 scales every effect: perspective, curvature, blur, noise, glare and low
contrast. The same (code, symbology, seed, degrade) always gives the same image.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import zxingcpp

from edge_agent.codes import tables
from edge_agent.errors import SimulatorError

SYMBOLOGIES = {
    "qr": zxingcpp.BarcodeFormat.QRCode,
    "datamatrix": zxingcpp.BarcodeFormat.DataMatrix,
    "code128": zxingcpp.BarcodeFormat.Code128,
}
LINEAR_EXTRA = {
    "code39": zxingcpp.BarcodeFormat.Code39,
    "ean13": zxingcpp.BarcodeFormat.EAN13,
}
_ALL = {**SYMBOLOGIES, **LINEAR_EXTRA}
_LINEAR = ("code128", *LINEAR_EXTRA)
_W, _H = 1100, 600
_VOLTS = [51.2, 76.8, 102.4, 350.4]


def random_pack_code(rng: np.random.Generator) -> str:
    """A valid 24-character GB/T 34014 code (LFP or NCM pack/module/cell)."""
    alnum = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"

    def pick(chars: str, n: int) -> str:
        return "".join(chars[int(i)] for i in rng.integers(0, len(chars), n))

    year = pick("ABCDEF", 1)
    month = pick("123456789ABC", 1)
    day = pick("".join(k for k, v in tables.DAYS.items() if v <= 28), 1)
    serial = f"{int(rng.integers(1, 10_000_000)):07d}"
    return (
        pick(alnum, 3)
        + pick("PMC", 1)
        + pick("BE", 1)
        + pick(alnum, 2)
        + pick(alnum, 7)
        + year
        + month
        + day
        + serial
    )


def _symbol(code: str, symbology: str) -> np.ndarray:
    fmt = _ALL.get(symbology)
    if fmt is None:
        raise SimulatorError(f"unknown symbology {symbology!r}; use {', '.join(_ALL)}")
    try:
        barcode = zxingcpp.create_barcode(code, fmt)
    except Exception as exc:  # zxing-cpp raises ValueError/RuntimeError for bad content
        raise SimulatorError(f"cannot encode {code!r} as {symbology}: {exc}") from None
    img: Any = np.asarray(barcode.to_image(scale=1), dtype=np.uint8)
    if symbology in _LINEAR:
        scale = max(3, 900 // img.shape[1])
        img = cv2.resize(img, (img.shape[1] * scale, 110), interpolation=cv2.INTER_NEAREST)
    else:
        side = 250
        scale = max(1, side // img.shape[1])
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    out: np.ndarray = img
    return out


def _clean_label(code: str, symbology: str, rng: np.random.Generator) -> np.ndarray:
    sym = _symbol(code, symbology)
    sh, sw = sym.shape
    width = max(_W, sw + 80)  # long payloads widen the label instead of overflowing it
    height = max(_H, sh + 230)
    label = np.full((height, width), 245, np.uint8)
    cv2.rectangle(label, (8, 8), (width - 9, height - 9), 30, 3)
    font = cv2.FONT_HERSHEY_SIMPLEX
    rating = f"Rated: {rng.choice(_VOLTS)}V  {rng.choice([50, 100, 150])}Ah"
    lines = [
        ("LITHIUM-ION BATTERY PACK", 1.0, 2),
        (rating, 0.7, 2),
        ("Do not short-circuit. Recycle properly.", 0.6, 1),
        (code[:60], 0.7, 2),
    ]
    y = 50
    for text, size, thick in lines:
        cv2.putText(label, text, (30, y), font, size, 20, thick, cv2.LINE_AA)
        y += 42
    x0 = (width - sw) // 2 if symbology in _LINEAR else width - sw - 40
    y0 = height - sh - 30
    label[y0 : y0 + sh, x0 : x0 + sw] = np.where(sym < 128, 15, 245).astype(np.uint8)
    return label


def degrade_image(label: np.ndarray, d: float, rng: np.random.Generator) -> np.ndarray:
    """Warp, bend, fade, glare, blur and noise a grey label by ``d`` (0..1) on a background."""
    h, w = label.shape
    # Place the label on a darker background with margin, then warp (perspective).
    bg_h, bg_w = h + 360, w + 360
    canvas = np.full((bg_h, bg_w), int(rng.integers(60, 120)), np.uint8)
    canvas[180 : 180 + h, 180 : 180 + w] = label
    src = np.array([[180, 180], [180 + w, 180], [180 + w, 180 + h], [180, 180 + h]], np.float32)
    jitter = rng.uniform(-1, 1, (4, 2)) * d * np.array([0.12 * w, 0.12 * h])
    # In-plane rotation of the hand-held shot (up to about 35 degrees at full degradation).
    angle = np.deg2rad(rng.uniform(-35, 35) * d)
    centre = np.array([bg_w / 2, bg_h / 2])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = (src + jitter - centre) @ rot.T + centre
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    img = cv2.warpPerspective(canvas, m, (bg_w, bg_h), borderMode=cv2.BORDER_REPLICATE)
    # Curvature: a cylindrical bulge shifts rows sideways by a sine of the column.
    amp = d * rng.uniform(4, 14)
    xs, ys = np.meshgrid(np.arange(bg_w, dtype=np.float32), np.arange(bg_h, dtype=np.float32))
    map_y = ys + amp * np.sin(np.pi * xs / bg_w).astype(np.float32)
    img = cv2.remap(img, xs, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Low contrast: squeeze the grey range around mid-grey.
    contrast = 1.0 - 0.65 * d * rng.uniform(0.5, 1.0)
    imgf: Any = (img.astype(np.float32) - 128) * contrast + 128 + rng.uniform(-30, 30) * d
    # Glare: a soft saturated ellipse somewhere on the label.
    if d > 0.2:
        cx, cy = rng.uniform(0.2, 0.8) * bg_w, rng.uniform(0.2, 0.8) * bg_h
        g = np.exp(-(((xs - cx) / (bg_w * 0.08)) ** 2 + ((ys - cy) / (bg_h * 0.06)) ** 2))
        imgf += g * 255 * d * rng.uniform(0.4, 0.9)
    # Blur, then sensor noise.
    sigma = d * rng.uniform(0.6, 2.2)
    if sigma > 0.2:
        imgf = cv2.GaussianBlur(imgf, (0, 0), sigma)
    imgf += rng.normal(0, 1 + 14 * d, imgf.shape)
    out: np.ndarray = np.clip(imgf, 0, 255).astype(np.uint8)
    return out


def render_label(code: str, symbology: str, *, seed: int, degrade: float) -> np.ndarray:
    """Render a label carrying ``code`` as ``symbology``, degraded by ``degrade`` (0..1); BGR."""
    if not 0.0 <= degrade <= 1.0:
        raise SimulatorError(f"degrade must be 0..1, got {degrade}")
    rng = np.random.default_rng(seed)
    label = _clean_label(code, symbology, rng)
    gray = degrade_image(label, degrade, rng) if degrade > 0 else label
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def write_labels(
    out: Path, *, count: int, seed: int, degrade: float, symbology: str = "mixed"
) -> list[dict[str, str]]:
    """Render ``count`` labels into ``out`` and a ``manifest.json`` of file -> expected code."""
    if count < 1 or count > 100_000:
        raise SimulatorError(f"count must be 1..100000, got {count}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimulatorError(f"cannot create {out}: {exc}") from None
    names = list(SYMBOLOGIES)
    manifest = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        sym = names[i % len(names)] if symbology == "mixed" else symbology
        code = random_pack_code(rng)
        img = render_label(code, sym, seed=seed * 100_003 + i, degrade=degrade)
        name = f"label-{i:05d}-{sym}.png"
        if not cv2.imwrite(str(out / name), img):
            raise SimulatorError(f"cannot write {out / name}")
        manifest.append({"file": name, "code": code, "symbology": sym})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
