"""The counter port: what `services.ratelimit` asks of a counter, and the window both counters share."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Count:
    used: int  # requests counted in the current window, this one included
    reset_s: float  # seconds until the window ends


class Counter(Protocol):
    async def hit(self, subject: str, window_s: int) -> Count: ...

    async def aclose(self) -> None: ...


def current_window(window_s: int) -> tuple[int, float]:
    """The index of the window `now` falls in, and the seconds until it ends."""
    now = time.time()
    index = math.floor(now / window_s)
    return index, (index + 1) * window_s - now
