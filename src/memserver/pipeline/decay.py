"""Decay (a per-project setting): a memory's search score times a factor from its recency and recent reads.

factor = 0.3 + 0.9 * recency + 0.3 * reads, in [0.3, 1.5]:
* recency = 2 ** (-age / 30 days), age since the memory was last written (1 when new, 0.5 after a month);
* reads = min(1, log2(1 + n) / 5), n = times search returned it, counted only while its last read is less
  than 30 days old (31 recent reads give the whole 0.3).
The decayed score is capped at 1, so it stays on the 0..1 scale every other score uses.
"""

from __future__ import annotations

import math
from datetime import datetime

HALF_LIFE_DAYS = 30.0
READS_WINDOW_DAYS = 30.0
MIN_FACTOR, MAX_FACTOR = 0.3, 1.5


def factor(updated_at: datetime, now: datetime, read_count: int = 0, last_read_at: datetime | None = None) -> float:
    """The multiplier for one memory (0.3..1.5)."""
    age_days = max(0.0, (now - updated_at).total_seconds() / 86400)
    recency: float = 2.0 ** (-age_days / HALF_LIFE_DAYS)  # float ** float is typed as possibly complex
    recent = last_read_at is not None and (now - last_read_at).total_seconds() / 86400 <= READS_WINDOW_DAYS
    reads = min(1.0, math.log2(1 + read_count) / 5) if recent else 0.0
    return max(MIN_FACTOR, min(MAX_FACTOR, 0.3 + 0.9 * recency + 0.3 * reads))


def decayed(score: float, f: float) -> float:
    return round(max(0.0, min(1.0, score * f)), 6)
