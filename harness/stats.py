"""Latency statistics shared by the benchmarks (standard library only: the Mem0 peer imports this too)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) with linear interpolation between the closest ranks; NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def nearest_rank(values: list[float], p: float) -> float:
    """The p-th percentile (0..100) as the nearest-rank sample, rounded to 0.01 (LoCoMo's latency figures)."""
    s = sorted(values)
    return round(s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))], 2)


def latency_summary(lat_s: list[float]) -> dict[str, float]:
    """p50/p95/p99/mean/max in milliseconds of latencies given in seconds (all NaN for none)."""
    ms = [x * 1000.0 for x in lat_s]
    if not ms:
        nan = float("nan")
        return {"p50_ms": nan, "p95_ms": nan, "p99_ms": nan, "mean_ms": nan, "max_ms": nan}
    return {
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p95_ms": round(percentile(ms, 0.95), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "mean_ms": round(sum(ms) / len(ms), 2),
        "max_ms": round(max(ms), 2),
    }


def median_of(summaries: Iterable[Mapping[str, object]]) -> dict[str, float]:
    """Key by key, the median of the numeric values the summaries hold for it (repeated benchmark runs)."""
    runs = list(summaries)
    out: dict[str, float] = {}
    for key in dict.fromkeys(k for s in runs for k in s):
        vals = [v for s in runs if isinstance(v := s.get(key), (int, float))]
        if vals:
            out[key] = round(statistics.median(vals), 3)
    return out
