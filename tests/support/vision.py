"""Fixtures for label-vision tests: the zxing-cpp sample set and simulated labels."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SAMPLES = Path("barcodes") / "zxing-cpp-samples"
SYMBOLOGY_DIRS = {"qrcode": "QRCode", "datamatrix": "DataMatrix", "code128": "Code128"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".pgm")


@dataclass(frozen=True)
class Sample:
    """One sample image; ``expected`` is None for false-positive images."""

    path: Path
    group: str  # "qrcode", "datamatrix", "code128", "falsepositives"
    expected: str | None


def iter_samples(shared_data: Path) -> Iterator[Sample]:
    """Every image with a same-stem .txt (read as raw UTF-8), plus every false-positive image."""
    root = shared_data / SAMPLES
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        group = folder.name.rsplit("-", 1)[0]
        if group not in (*SYMBOLOGY_DIRS, "falsepositives"):
            continue
        for image in sorted(folder.iterdir()):
            if image.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if group == "falsepositives":
                yield Sample(image, group, None)
                continue
            txt = image.with_suffix(".txt")
            if txt.exists():
                yield Sample(image, group, txt.read_bytes().decode("utf-8"))
