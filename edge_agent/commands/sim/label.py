"""``edge-agent sim label``: write simulated, degraded label photos to a folder (demo camera)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edge_agent.sim.label_render import SYMBOLOGIES, write_labels

__all__ = ["register", "run"]


def register(sub: Any, name: str) -> None:
    """Add ``sim label``."""
    p = sub.add_parser(name, help="write simulated label photos (a folder the camera can read)")
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--count", type=int, default=10, help="number of labels (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same images)")
    p.add_argument("--degrade", type=float, default=0.5, help="0 (clean) .. 1 (hard)")
    p.add_argument("--symbology", default="mixed", choices=["mixed", *SYMBOLOGIES])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``sim label``."""
    manifest = write_labels(
        args.out, count=args.count, seed=args.seed, degrade=args.degrade, symbology=args.symbology
    )
    print(f"wrote {len(manifest)} labels to {args.out}")
    return 0
