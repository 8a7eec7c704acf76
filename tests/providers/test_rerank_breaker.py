"""The per-process breaker in front of the reranker: open after N consecutive failures, one trial call after the
cooldown, closed again by its success (the clock is injected; nothing sleeps)."""

from __future__ import annotations

from memserver.providers.rerank.breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_it_opens_after_consecutive_failures_only() -> None:
    b = Breaker(3, 30.0, Clock())
    for _ in range(2):
        assert b.allow()
        b.failed()
    b.succeeded()  # a success in between starts the count again
    for _ in range(2):
        assert b.allow()
        b.failed()
    assert b.allow()
    b.failed()
    assert not b.allow()


def test_after_the_cooldown_one_trial_call_decides() -> None:
    clock = Clock()
    b = Breaker(1, 30.0, clock)
    b.failed()
    clock.now += 29.9
    assert not b.allow()
    clock.now += 0.2
    assert b.allow()  # the trial call
    assert not b.allow()  # only one at a time
    b.failed()  # it failed: another full cooldown
    clock.now += 29.9
    assert not b.allow()
    clock.now += 0.2
    assert b.allow()
    b.succeeded()
    assert b.allow()
    assert b.allow()  # closed: every call goes through


def test_a_cancelled_trial_call_lets_the_next_one_try() -> None:
    clock = Clock()
    b = Breaker(1, 5.0, clock)
    b.failed()
    clock.now += 6
    assert b.allow()
    b.abandoned()
    assert b.allow()
