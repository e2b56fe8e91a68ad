"""Decode rates on the zxing-cpp sample set (real images), false positives and speed."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from pathlib import Path

import pytest

from edge_agent.errors import ImageError
from edge_agent.vision.decode import decode_gray, decode_single_pass, to_gray
from edge_agent.vision.evidence import load_image_file
from tests.support.vision import iter_samples

# Rates reached by the multi-pass pipeline (goals: QR 97%, DM 98%, C128 100%). The one Data
# Matrix miss is dm-2x2-b, whose .txt is "<unkown>".
MIN_RATE = {"qrcode": 1.0, "datamatrix": 94 / 95, "code128": 1.0}


@pytest.fixture(scope="module")
def results(shared_data: Path) -> dict[str, list[tuple[str, bool, bool, float]]]:
    """group -> (file, ours found it, baseline found it, ms) for every sample."""
    out: dict[str, list[tuple[str, bool, bool, float]]] = defaultdict(list)
    for sample in iter_samples(shared_data):
        try:
            gray = to_gray(load_image_file(str(sample.path)))
        except ImageError:
            # Two 1-pixel false-positive images OpenCV cannot read: nothing decoded.
            assert sample.expected is None, sample.path
            out[sample.group].append((sample.path.name, False, False, 0.0))
            continue
        start = time.perf_counter()
        texts = {s.text for s in decode_gray(gray, time_caps=False).symbols}
        ms = (time.perf_counter() - start) * 1000
        if sample.expected is None:
            out[sample.group].append((sample.path.name, bool(texts), False, ms))
        else:
            base = sample.expected in decode_single_pass(gray)
            out[sample.group].append((sample.path.name, sample.expected in texts, base, ms))
    return out


@pytest.mark.parametrize("group", ["qrcode", "datamatrix", "code128"])
def test_decode_rate(results: dict[str, list[tuple[str, bool, bool, float]]], group: str) -> None:
    rows = results[group]
    assert len(rows) >= {"qrcode": 137, "datamatrix": 95, "code128": 22}[group]
    rate = sum(r[1] for r in rows) / len(rows)
    base = sum(r[2] for r in rows) / len(rows)
    assert rate >= MIN_RATE[group] - 1e-9, [r[0] for r in rows if not r[1]]
    assert rate >= base  # never worse than single-pass defaults


def test_no_false_positives(results: dict[str, list[tuple[str, bool, bool, float]]]) -> None:
    rows = results["falsepositives"]
    assert len(rows) == 46
    assert [r[0] for r in rows if r[1]] == []


def test_median_time_per_image(results: dict[str, list[tuple[str, bool, bool, float]]]) -> None:
    times = [r[3] for g in ("qrcode", "datamatrix", "code128") for r in results[g]]
    assert statistics.median(times) < 50.0
