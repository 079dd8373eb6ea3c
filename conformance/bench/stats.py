"""Summary statistics for the suite's case durations."""

from __future__ import annotations

import math
import statistics


def _sorted(values) -> list:
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    return ordered


def median(values) -> float:
    """The middle value; the mean of the two middle values of an even count (ValueError for none)."""
    return statistics.median(_sorted(values))


def percentile(values, p: float) -> float:
    """The nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p}: not in (0, 100]")
    ordered = _sorted(values)
    # The rank is rounded up; the small tolerance keeps 95% of 20 values at rank 19, not 20 (0.95 * 20 > 19).
    rank = max(1, math.ceil(p / 100 * len(ordered) - 1e-9))
    return ordered[rank - 1]
