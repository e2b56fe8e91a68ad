"""Argument types shared by subcommands: argparse turns their ValueError into one usage line."""

from __future__ import annotations

import argparse
import math


def seconds(text: str) -> float:
    """A finite duration of zero or more seconds (refuses -1, nan, inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """A finite duration above zero seconds."""
    value = seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return value
