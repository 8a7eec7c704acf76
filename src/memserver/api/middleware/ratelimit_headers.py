"""The X-RateLimit-* headers (and Retry-After) of the key's rate limit, on the response of every request
that reached the limiter (`deps.authenticate` leaves them in the scope)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memserver.api.kit.scope import RATELIMIT_HEADERS


class RateLimitHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start" and (extra := scope.get(RATELIMIT_HEADERS)):
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_limits)
