"""Small statistics shared by the benchmarks: percentiles and the median of repeated runs."""

from __future__ import annotations

import statistics
from collections.abc import Callable


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def median_of(runs: int, fn: Callable[[], float]) -> float:
    """The median of ``runs`` calls of ``fn``."""
    return statistics.median(fn() for _ in range(runs))
