"""Webhook delivery over HTTP: one signed POST to a receiver, through the outbound URL guard (`providers.net`).

A receiver's host name is resolved, checked and pinned again at each attempt (DNS may have changed since the
webhook was created); redirects are not followed; one deadline covers the whole attempt.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from memserver.config import WebhookSettings
from memserver.providers.errors import ProviderError
from memserver.providers.net import OutboundError, OutboundGuard, OutboundPolicy, Resolver, parse_networks

# A receiver's answer is read up to this many bytes, then dropped: only its status counts, and a hostile
# receiver must not make a delivery read (or inflate) an unbounded body.
RESPONSE_BYTES = 65_536


class DeliveryFailed(ProviderError):
    """The receiver was refused by the guard, unreachable or too slow. The message is the guard's own words,
    never an address; `duration_ms`: how long the attempt took until it failed."""

    code = "webhook_delivery_failed"

    def __init__(self, message: str, *, duration_ms: int = 0):
        super().__init__(message, public=True)
        self.duration_ms = duration_ms


@dataclass(frozen=True)
class SendResult:
    status: int  # the receiver's HTTP status
    duration_ms: int


def outbound_policy(settings: WebhookSettings) -> OutboundPolicy:
    """Webhook requests under the outbound guard: one deadline per attempt, redirects not followed."""
    return OutboundPolicy(
        subject="webhook URL",
        allow_private=settings.allow_private_urls,
        allowed_networks=parse_networks(settings.allowed_networks),
        deadline_s=settings.timeout_s,
        max_redirects=0,
    )


def check_url(url: str, settings: WebhookSettings) -> None:
    """Syntax and literal addresses only, no DNS; raises the guard's `OutboundError`."""
    OutboundGuard(outbound_policy(settings)).check(url)


class WebhookSender:
    """Posts deliveries under the webhook policy of `settings`, resolving host names through `resolver`."""

    def __init__(self, settings: WebhookSettings | None = None, resolver: Resolver | None = None):
        self._guard = OutboundGuard(outbound_policy(settings or WebhookSettings()), resolver)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        """One attempt; raises DeliveryFailed when no answer came (any HTTP status is an answer)."""
        started = time.perf_counter()
        try:
            got = await self._guard.fetch(
                url, method="POST", content=body, headers=headers, max_body=RESPONSE_BYTES, body="discard"
            )
        except OutboundError as exc:  # our words, never an address
            raise DeliveryFailed(str(exc), duration_ms=_since(started)) from None
        return SendResult(status=got.status, duration_ms=_since(started))


def _since(started: float) -> int:
    return round(1000 * (time.perf_counter() - started))
