"""The decay factor: 0.3x..1.5x from recency (30-day half-life) and recent reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from memserver.pipeline.decay import decayed, factor

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def test_bounds_and_shape() -> None:
    assert factor(NOW, NOW) == 1.2
    assert abs(factor(NOW - timedelta(days=30), NOW) - 0.75) < 1e-9
    assert abs(factor(NOW - timedelta(days=3650), NOW) - 0.3) < 1e-6
    assert factor(NOW, NOW, read_count=31, last_read_at=NOW) == 1.5
    assert factor(NOW, NOW, read_count=10_000, last_read_at=NOW) == 1.5
    assert factor(NOW, NOW, read_count=31, last_read_at=NOW - timedelta(days=31)) == 1.2  # stale reads
    assert factor(NOW, NOW, read_count=1, last_read_at=NOW) > 1.2


def test_the_score_stays_on_its_scale() -> None:
    assert decayed(0.9, 1.5) == 1.0
    assert decayed(0.5, 0.3) == 0.15
