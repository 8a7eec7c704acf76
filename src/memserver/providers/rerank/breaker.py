"""A per-process circuit breaker: after N consecutive failures a dependency is left alone for a cooldown.

A reranker that is down costs every search its full deadline; with the breaker an outage costs one deadline
per cooldown, and the searches in between answer at once in hybrid order. After the cooldown ONE call is let
through (half-open): its success closes the breaker, its failure opens it for another cooldown.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Breaker:
    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic):
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._consecutive = 0
        self._open_until = 0.0
        self._probing = False

    def allow(self) -> bool:
        """Whether to call now (closed, or the one trial call after a cooldown)."""
        if self._consecutive < self.failures:
            return True
        if self._probing or self._clock() < self._open_until:
            return False
        self._probing = True
        return True

    def succeeded(self) -> None:
        self._consecutive, self._probing = 0, False

    def abandoned(self) -> None:
        """The call was cancelled (the client went away): neither a success nor a failure."""
        self._probing = False

    def failed(self) -> None:
        self._consecutive += 1
        self._probing = False
        if self._consecutive >= self.failures:
            self._open_until = self._clock() + self.cooldown_s
