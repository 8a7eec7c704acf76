"""The request limits (`domain.limits.current()`) the validators of this request read."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from memserver.domain import limits as request_limits
from memserver.domain.limits import Limits


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = request_limits.use(self.limits)
        try:
            await self.app(scope, receive, send)
        finally:
            request_limits.reset(token)
