"""The Redis counter: shared by every API replica."""

from __future__ import annotations

import logging
from typing import Any

from memserver.providers.ratelimit.base import Count, current_window

log = logging.getLogger(__name__)


class RedisCounter:
    """Counts in Redis, shared by every API replica. If Redis fails, requests are let through (logged)."""

    def __init__(self, url: str):
        # Deferred: redis is an optional package (the `celery` extra); only this backend needs it.
        import redis.asyncio as redis

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    async def hit(self, subject: str, window_s: int) -> Count:
        index, reset = current_window(window_s)
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
