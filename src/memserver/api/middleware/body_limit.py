"""Request bodies are limited to MEMSERVER_LIMITS__MAX_BODY_BYTES (413): by Content-Length before anything is
read, and by counting the bytes actually received (a chunked body has no length)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memserver.api.middleware.refusal import refuse


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.too_large = f"Request body larger than {max_body_bytes} bytes (MEMSERVER_LIMITS__MAX_BODY_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = -1
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
        if declared > self.max_body_bytes:
            await refuse(scope, receive, send, 413, self.too_large)
            return
        received = 0

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI re-raises HTTPExceptions from body reading; its handler renders the JSON.
                    raise HTTPException(413, detail=self.too_large)
            return message

        await self.app(scope, receive_counted, send)
