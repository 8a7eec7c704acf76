"""Request counters for rate limits: fixed windows, in-process or shared through Redis.

A window is `window_s` long and aligned to the epoch, so every replica counts into the same Redis
key (`memserver:rl:<kind>:<id>:<window>`) without coordination. Counting is one INCR (+ EXPIRE on the
first hit) per limited subject per request.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Count:
    used: int  # requests counted in the current window, this one included
    reset_s: float  # seconds until the window ends


class Counter(Protocol):
    async def hit(self, subject: str, window_s: int) -> Count: ...

    async def aclose(self) -> None: ...


def _window(window_s: int) -> tuple[int, float]:
    now = time.time()
    index = math.floor(now / window_s)
    return index, (index + 1) * window_s - now


class InProcessCounter:
    """Counts in this process only (one API process, or limits per replica)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}

    async def hit(self, subject: str, window_s: int) -> Count:
        index, reset = _window(window_s)
        seen, used = self._counts.get(subject, (index, 0))
        used = used + 1 if seen == index else 1
        self._counts[subject] = (index, used)
        if len(self._counts) > 100_000:  # subjects are resolved keys and projects; drop stale windows
            self._counts = {k: v for k, v in self._counts.items() if v[0] == index}
        return Count(used, reset)

    async def aclose(self) -> None:
        return None


class RedisCounter:
    """Counts in Redis, shared by every API replica. If Redis fails, requests are let through (logged)."""

    def __init__(self, url: str):
        import redis.asyncio as redis

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    async def hit(self, subject: str, window_s: int) -> Count:
        index, reset = _window(window_s)
        key = f"memserver:rl:{subject}:{index}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window_s + 1, nx=True)
                used, _ = await pipe.execute()
        except Exception as exc:  # fail open: a rate limiter outage must not take the API down
            log.warning("rate limit counter unavailable, request not counted: %s", exc)
            return Count(0, reset)
        return Count(int(used), reset)

    async def aclose(self) -> None:
        await self._redis.aclose()
