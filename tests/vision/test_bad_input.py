"""`label read` of hostile files: refused before decoding, in one line (issue 15)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.errors import ImageError
from edge_agent.vision.evidence import MAX_PIXELS, load_image_bytes
from edge_agent.vision.image_header import image_size
from tests.support.cli import one_line_error

ROOT = Path(__file__).resolve().parents[2]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(side: int = 20000) -> bytes:
    """A valid white side x side gray PNG: a few hundred KB on disk, side**2 bytes decoded."""
    packer = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * side
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", body)
        + _chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    path.write_bytes(huge_png())
    return path


def _label_read_peak(image: Path) -> tuple[int, str, float]:
    """(exit status, stderr, peak RSS in MiB) of ``edge-agent label read IMAGE`` in a process."""
    script = (
        "import resource, sys\n"
        "from edge_agent.cli import main\n"
        "rc = main(['label', 'read', sys.argv[1]])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(image)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    return proc.returncode, proc.stderr, int(proc.stdout.split()[-1]) / 1024


def test_huge_png_refused_before_decoding(huge: Path, tmp_path: Path) -> None:
    """Was 3.6 GB and 12.7 s; now the refusal costs no more memory than reading a small label."""
    assert huge.stat().st_size < 1_000_000
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.full((480, 640), 255, np.uint8))
    _rc, _err, baseline_mb = _label_read_peak(small)  # the same process reading a blank label
    rc, err, peak_mb = _label_read_peak(huge)
    assert rc == 2, err
    [line] = err.strip().splitlines()
    assert "20000x20000 pixels is too large" in line
    # decoding would need 400 MB for the pixels alone (20000 x 20000 x 1 byte)
    assert peak_mb < baseline_mb + 100, (peak_mb, baseline_mb)


def test_huge_png_bytes_never_reach_the_decoder(
    huge: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decode(*_: object) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(cv2, "imdecode", no_decode)
    with pytest.raises(ImageError, match="20000x20000 pixels is too large"):
        load_image_bytes(huge.read_bytes())


def test_fifo_is_not_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "label.png"
    os.mkfifo(fifo)
    line = one_line_error(capsys, "label", "read", str(fifo))
    assert "not a regular file" in line and "does not exist" not in line


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-0.5", "abc"])
def test_bad_timeouts_refused(capsys: pytest.CaptureFixture[str], value: str) -> None:
    line = one_line_error(capsys, "label", "read", "x.png", "--timeout", value)
    assert "--timeout" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["identify", "--wait", "nan"],
        ["selftest", "--timeout", "-3"],
        ["bms", "read", "--timeout", "nan"],
    ],
)
def test_other_durations_refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    one_line_error(capsys, *argv)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".bmp"])
def test_header_matches_decoder(ext: str) -> None:
    image = np.zeros((37, 53, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, image)
    assert ok
    assert image_size(buf.tobytes()) == (53, 37)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"RIFF\x00\x00\x00\x00WEBP", b"BM",
                     b"GIF89a"]).flatmap(lambda p: st.binary(max_size=80).map(lambda b: p + b)),
))  # fmt: skip
def test_fuzz_image_bytes(data: bytes) -> None:
    """Any bytes: an image within limits or ImageError; headers never raise."""
    size = image_size(data)
    assert size is None or (size[0] >= 0 and size[1] >= 0)
    try:
        image = load_image_bytes(data)
    except ImageError:
        return
    assert image.shape[0] * image.shape[1] <= MAX_PIXELS
