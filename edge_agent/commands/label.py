"""``edge-agent label read IMAGE|DEVICE|DIR``: photograph/read the pack label once."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

from edge_agent.commands._args import positive_seconds
from edge_agent.dataform import to_plain
from edge_agent.errors import ConfigError, ImageError, VisionError
from edge_agent.vision.camera import camera_from_settings, guess_backend
from edge_agent.vision.evidence import check_image_file
from edge_agent.vision.reader import read_label
from edge_agent.vision.settings import LabelSettings


def register(sub: Any) -> None:
    """Add ``label read``."""
    parser = sub.add_parser("label", help="read the pack label (QR, Data Matrix, Code 128)")
    commands = parser.add_subparsers(dest="label_command", metavar="SUBCOMMAND", required=True)
    read = commands.add_parser("read", help="capture, decode and print the LabelReading")
    read.add_argument("source", help="image, folder, device index/path, video or URL")
    read.add_argument("--backend", default="auto", help="auto, opencv, files or picamera2")
    read.add_argument("--frames", type=int, default=None, help="stills to vote over")
    read.add_argument("--timeout", type=positive_seconds, default=10.0, help="seconds (default 10)")
    read.add_argument("--photo", type=Path, default=None, help="write the evidence JPEG here")
    read.add_argument("--json", action="store_true", help="print the reading as JSON")
    read.set_defaults(func=_read)


def _check_file_source(source: str) -> None:
    """A file given on the command line: refuse it before any decoding (exit 2, one line)."""
    path = Path(source)
    if path.is_dir():
        return
    if not path.exists():
        raise ConfigError(f"image source {source!r} does not exist", key_path="source")
    try:
        check_image_file(source)
    except ImageError as exc:
        raise ConfigError(str(exc), key_path="source") from None


def _read(args: argparse.Namespace) -> int:
    if args.frames is not None and args.frames < 1:
        raise ConfigError("must be at least 1", key_path="--frames")
    backend = guess_backend(args.source) if args.backend == "auto" else args.backend
    if backend == "files":
        _check_file_source(args.source)
    settings = LabelSettings(source=args.source, backend=args.backend)
    if args.frames is not None:
        settings = dataclasses.replace(settings, frames=max(1, min(30, args.frames)))
    with camera_from_settings(settings) as camera:
        result = asyncio.run(read_label(camera, settings, args.timeout))
    reading = result.reading
    if args.photo is not None and result.photo_jpeg is not None:
        try:
            args.photo.write_bytes(result.photo_jpeg)
        except OSError as exc:
            raise VisionError(f"cannot write {args.photo}: {exc}") from None
    if args.json:
        print(json.dumps(to_plain(reading), ensure_ascii=False, indent=2))
    else:
        print(f"status: {reading.status}  frames: {reading.frames}  ms: {reading.duration_ms}")
        for code in reading.codes:
            print(
                f"  {code.symbology:<11} {code.kind:<17} {code.text!r}  (pass {code.decode_pass})"
            )
        for problem in reading.problems:
            print(f"  problem: {problem}")
    return 0 if reading.status in ("ok", "partial") else 1
