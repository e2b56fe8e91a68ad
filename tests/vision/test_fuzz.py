"""hypothesis: arbitrary bytes and arrays as image input never crash the pipeline."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edge_agent.errors import ImageError
from edge_agent.vision.evidence import load_image_bytes
from edge_agent.vision.reader import read_frames
from edge_agent.vision.settings import LabelSettings

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PNG_HEAD = b"\x89PNG\r\n\x1a\n"
FAST = LabelSettings(decode_budget_ms=50.0)


@FUZZ
@given(st.one_of(st.binary(max_size=4096), st.binary(max_size=2048).map(lambda b: PNG_HEAD + b)))
def test_arbitrary_bytes_are_an_image_or_image_error(data: bytes) -> None:
    try:
        image = load_image_bytes(data)
    except ImageError:
        return
    reading = read_frames([image], FAST).reading
    assert reading.status in ("ok", "partial", "failed")


@FUZZ
@given(
    arrays(
        dtype=st.sampled_from([np.uint8, np.float32, np.int16]),
        shape=st.one_of(
            st.tuples(st.integers(0, 80), st.integers(0, 80)),
            st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(1, 5)),
        ),
    )
)
def test_arbitrary_arrays_never_crash(frame: np.ndarray) -> None:
    reading = read_frames([frame], FAST).reading
    assert reading.status in ("ok", "partial", "failed")
    if reading.status == "failed":
        assert reading.problems


@FUZZ
@given(arrays(dtype=np.uint8, shape=st.tuples(st.integers(1, 90), st.integers(1, 90))))
def test_bar_rectify_never_crashes_on_small_or_odd_frames(gray: np.ndarray) -> None:
    from edge_agent.vision.bar_rectify import read_bars

    assert all(r.barcode.text for r in read_bars(gray, 200.0))


@settings(max_examples=30, deadline=None)
@given(
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FFF), min_size=1, max_size=60)
)
def test_arbitrary_decoded_text_flows_through(text: str) -> None:
    import zxingcpp

    from edge_agent.vision.decode import decode_gray

    symbol = np.asarray(
        zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode).to_image(scale=4)
    )
    framed = np.pad(symbol, 20, constant_values=255)
    decoded = decode_gray(framed)
    assert decoded.symbols  # any text decodes back to some text and flows through
    reading = read_frames([framed], FAST).reading
    assert reading.codes
    if text.isascii():  # non-ASCII without ECI is subject to zxing's charset guessing
        assert text in {s.text for s in decoded.symbols}
        assert any(c.text == text for c in reading.codes)
