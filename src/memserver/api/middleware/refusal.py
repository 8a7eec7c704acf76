"""The answer of a middleware that refuses a request before any route sees it."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from memserver.api.kit.scope import REQUEST_ID
from memserver.api.kit.wire import JSONResponse


async def refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    body = {"error": message, "detail": message, "request_id": scope.get(REQUEST_ID)}
    await JSONResponse(body, status_code=status)(scope, receive, send)
