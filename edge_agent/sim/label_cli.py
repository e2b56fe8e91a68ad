"""``edge-agent sim label``: write simulated, degraded label photos to a folder (demo camera)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_agent.errors import SimulatorError
from edge_agent.sim.label_render import SYMBOLOGIES, random_pack_code, render_label


def register(sub: Any, name: str) -> None:
    """Add ``sim label``."""
    p = sub.add_parser(name, help="write simulated label photos (a folder the camera can read)")
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--count", type=int, default=10, help="number of labels (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same images)")
    p.add_argument("--degrade", type=float, default=0.5, help="0 (clean) .. 1 (hard)")
    p.add_argument("--symbology", default="mixed", choices=["mixed", *SYMBOLOGIES])
    p.set_defaults(func=run)


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


def run(args: argparse.Namespace) -> int:
    """Entry point of ``sim label``."""
    manifest = write_labels(
        args.out, count=args.count, seed=args.seed, degrade=args.degrade, symbology=args.symbology
    )
    print(f"wrote {len(manifest)} labels to {args.out}")
    return 0
