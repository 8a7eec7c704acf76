"""Rate limits per API key and per project (MEMSERVER_RATELIMIT__*): the decision and its headers."""

from __future__ import annotations

import math
from dataclasses import dataclass

from memserver.config import RateLimitSettings
from memserver.domain.principal import Principal
from memserver.errors import TooManyRequests
from memserver.providers.ratelimit.base import Counter
from memserver.providers.ratelimit.memory import InProcessCounter
from memserver.providers.ratelimit.redis import RedisCounter


@dataclass(frozen=True)
class Decision:
    limit: int
    remaining: int
    reset_s: int
    allowed: bool

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The X-RateLimit-* headers (and Retry-After when refused) that Mem0's SDKs read."""
        out = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_s).encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(self.reset_s).encode()))
        return out


class RateLimiter:
    def __init__(self, settings: RateLimitSettings, counter: Counter):
        self.settings = settings
        self.counter = counter

    @property
    def enabled(self) -> bool:
        return self.settings.per_key > 0 or self.settings.per_project > 0

    async def check(self, principal: Principal) -> Decision | None:
        """Count this request against its key and its project; None when no limit is configured."""
        s = self.settings
        decisions = []
        for limit, subject in (
            (s.per_key, f"key:{principal.key_id}"),
            (s.per_project, f"project:{principal.project_id}"),
        ):
            if limit > 0:
                count = await self.counter.hit(subject, s.window_s)
                decisions.append(
                    Decision(
                        limit=limit,
                        remaining=max(0, limit - count.used),
                        reset_s=max(1, math.ceil(count.reset_s)),
                        allowed=count.used <= limit,
                    )
                )
        if not decisions:
            return None
        refused = [d for d in decisions if not d.allowed]
        return min(refused or decisions, key=lambda d: (d.remaining, -d.reset_s))

    async def aclose(self) -> None:
        await self.counter.aclose()


def build_limiter(settings: RateLimitSettings, redis_url: str) -> RateLimiter:
    counter: Counter = RedisCounter(redis_url) if settings.backend == "redis" else InProcessCounter()
    return RateLimiter(settings, counter)


def refusal(decision: Decision) -> TooManyRequests:
    return TooManyRequests(
        f"Rate limit exceeded: {decision.limit} requests per window for this API key or project; "
        f"retry in {decision.reset_s} s."
    )
