"""Buckets of a duration, for exact percentiles without sorting every value of a period.

A duration of ``s`` seconds falls in bucket ``floor(64 × ln(1 + s))``: buckets are ordered like the values and each
is about 1.6 % wide, so the bucket holding a given rank holds few values. Counting per bucket (from the monthly
rollup and the facts) tells which bucket holds the rank; only that bucket's values are then read and sorted.
"""

from __future__ import annotations

import math

BUCKETS_PER_E = 64


def duration_bucket(seconds: float | None) -> int | None:
    """The bucket of a duration (None for none; -1 for a negative one, which no fold produces)."""
    if seconds is None:
        return None
    if seconds < 0:
        return -1
    return math.floor(math.log1p(seconds) * BUCKETS_PER_E)
