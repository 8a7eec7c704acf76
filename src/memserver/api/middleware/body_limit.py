"""Request bodies are limited to MEMSERVER_LIMITS__MAX_BODY_BYTES (413): by Content-Length before anything is
read, and by counting the bytes actually received (a chunked body has no length). The import of a project's
backup has its own, larger limit (MEMSERVER_LIMITS__MAX_IMPORT_BYTES); its route spools the body to disk."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memserver.api.middleware.refusal import refuse

# (method, path as routed: one spelling, no trailing slash) -> its own limit's setting
IMPORT_ROUTE = ("POST", "/v1/memserver/import")


def _too_large(limit: int, setting: str) -> str:
    return f"Request body larger than {limit} bytes ({setting})"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_import_bytes: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_import_bytes = max_body_bytes if max_import_bytes is None else max_import_bytes

    def _limit(self, scope: Scope) -> tuple[int, str]:
        if (scope.get("method"), scope.get("path")) == IMPORT_ROUTE:
            return self.max_import_bytes, _too_large(self.max_import_bytes, "MEMSERVER_LIMITS__MAX_IMPORT_BYTES")
        return self.max_body_bytes, _too_large(self.max_body_bytes, "MEMSERVER_LIMITS__MAX_BODY_BYTES")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, too_large = self._limit(scope)
        declared = -1
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
        if declared > limit:
            await refuse(scope, receive, send, 413, too_large)
            return
        received = 0

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises HTTPExceptions from body reading; its handler renders the JSON.
                    raise HTTPException(413, detail=too_large)
            return message

        await self.app(scope, receive_counted, send)
