"""The qr-regrid last-resort pass: warped QR symbols located but undecodable by every pass."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import zxingcpp

from edge_agent.vision.decode import REGRID_NAME, decode_gray
from edge_agent.vision.qr_regrid import _fixed_pattern, regrid_qr
from tests.support.vision import SAMPLES

# Photos of a QR code printed on cloth (zxing-cpp qrcode-4): every other pass ends in a
# Reed-Solomon checksum error.
WARPED = ("05", "06", "08", "13", "30", "31", "33")
TEXT = "001PBS1ABCDEFGA3A0000123"


def _modules(text: str, version_hint: str) -> np.ndarray:
    """The module matrix (True = dark) of a QR symbol made by zxing-cpp's writer."""
    img = np.asarray(
        zxingcpp.create_barcode(
            text, zxingcpp.BarcodeFormat.QRCode, ec_level=version_hint
        ).to_image(scale=1, add_quiet_zones=False)
    )
    return img < 128


def _warped_label() -> np.ndarray:
    """A QR symbol bent by a smooth sine field and blurred, as a crumpled print looks."""
    img = np.asarray(
        zxingcpp.create_barcode(TEXT, zxingcpp.BarcodeFormat.QRCode, ec_level="L").to_image(
            scale=6, add_quiet_zones=True
        )
    )
    ys, xs = np.mgrid[0 : img.shape[0], 0 : img.shape[1]].astype(np.float32)
    mx = xs + 2 * np.sin(2 * np.pi * ys / 120)
    my = ys + 2 * np.sin(2 * np.pi * xs / 120 + 1.0)
    warped = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderValue=255)
    return np.asarray(cv2.GaussianBlur(warped, (0, 0), 1.5))


@pytest.mark.parametrize(("text", "level"), [("A", "L"), (TEXT, "L"), ("x" * 60, "H")])
def test_fixed_pattern_matches_real_symbols(text: str, level: str) -> None:
    bits = _modules(text, level)
    n = bits.shape[0]
    fixed = _fixed_pattern(n, (n - 17) // 4)
    known = fixed != 0
    assert known.sum() > 3 * 49  # finders at least
    assert np.array_equal(bits[known], fixed[known] > 0)


def test_warped_synthetic_symbol_needs_the_regrid_pass() -> None:
    gray = _warped_label()
    assert decode_gray(gray, regrid=False, time_caps=False).symbols == ()
    result = decode_gray(gray, time_caps=False)
    assert [(s.text, s.decode_pass) for s in result.symbols] == [(TEXT, REGRID_NAME)]
    assert result.passes_run[-1] == REGRID_NAME
    xs = [p[0] for p in result.symbols[0].position]
    assert min(xs) < 40 < 130 < max(xs)  # the symbol's outline, not the rendered copy's


@pytest.mark.parametrize("name", WARPED)
def test_warped_photos_are_read_by_regrid(shared_data: Path, name: str) -> None:
    path = shared_data / SAMPLES / "qrcode-4" / f"{name}.webp"
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    expected = path.with_suffix(".txt").read_bytes().decode("utf-8")
    assert expected not in {
        s.text for s in decode_gray(gray, regrid=False, time_caps=False).symbols
    }
    symbols = decode_gray(gray, time_caps=False).symbols
    assert [(s.text, s.decode_pass) for s in symbols] == [(expected, REGRID_NAME)]


def test_regrid_respects_its_budget_and_ignores_plain_frames() -> None:
    gray = _warped_label()
    start = time.perf_counter()
    regrid_qr(gray, 1.0)  # may or may not finish the coarsest mesh, but stops there
    assert (time.perf_counter() - start) * 1000 < 200
    assert regrid_qr(np.full((200, 200), 255, np.uint8), 500.0) == []
    noise = np.random.default_rng(1).integers(0, 256, (240, 240), dtype=np.uint8)
    assert regrid_qr(noise, 500.0) == []
