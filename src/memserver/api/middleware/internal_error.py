"""An error nothing else handled becomes a JSON 500 with the request id; its text goes to the log only."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memserver.api.kit.scope import REQUEST_ID
from memserver.api.kit.wire import JSONResponse

log = logging.getLogger("memserver.http")


class InternalErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            # Answer the 500 here instead of re-raising: a re-raised error makes the server drop the
            # keep-alive connection, and the client's next request on it would fail too.
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            body = {"error": "internal_error", "detail": "Internal server error", "request_id": scope.get(REQUEST_ID)}
            await JSONResponse(body, status_code=500)(scope, receive, send)
