"""The follow-up lookup is skipped only when it provably finds nothing (pipeline.coverage)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from memserver.pipeline import coverage

THRESHOLD = 0.75


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def test_a_message_with_fewer_memories_than_shown_covers_everything() -> None:
    assert coverage.radius([0.9, 0.2], k=3) == coverage.ALL_SHOWN
    far = unit(np.array([1.0, 0.0]))
    assert coverage.covered(far, unit(np.array([0.0, 1.0])), coverage.ALL_SHOWN, THRESHOLD)


def test_a_fact_equal_to_its_message_is_covered_only_when_the_radius_is_below_the_threshold() -> None:
    m = unit(np.array([1.0, 0.0, 0.0]))
    assert coverage.radius([0.9, 0.6, 0.5], k=3) == 0.5
    assert coverage.covered(m, m, 0.5, THRESHOLD)  # every unshown memory is <= 0.5 similar to it
    assert not coverage.covered(m, m, 0.8, THRESHOLD)  # an unshown one may be 0.8 similar: look it up


def test_a_fact_far_from_its_message_is_not_covered() -> None:
    m = unit(np.array([1.0, 0.0, 0.0]))
    f = unit(np.array([0.6, 0.8, 0.0]))  # cosine 0.6 with the message
    assert not coverage.covered(f, m, 0.5, THRESHOLD)
    assert coverage.covered(f, m, -0.9, THRESHOLD)


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    k=st.integers(1, 6),
    closeness=st.floats(0.0, 1.0),
)
def test_covered_never_hides_a_memory_that_reaches_the_threshold(seed: int, n: int, k: int, closeness: float) -> None:
    """Brute force: whenever `covered` says no lookup is needed, no unshown memory is >= threshold to the fact."""
    rng = np.random.default_rng(seed)
    dim = 8
    message = unit(rng.standard_normal(dim))
    # memories clustered around the message, so that some are close and the radius varies
    memories = unit(message + rng.standard_normal((n, dim)) * rng.uniform(0.1, 2.0))
    fact = unit(message + closeness * rng.standard_normal(dim))
    sims = memories @ message
    order = np.argsort(-sims)
    shown = set(order[:k].tolist())
    r = coverage.radius([float(sims[i]) for i in order[:k]], k)
    if coverage.covered(fact, message, r, THRESHOLD):
        unshown = [i for i in range(n) if i not in shown]
        assert all(float(memories[i] @ fact) < THRESHOLD for i in unshown)
