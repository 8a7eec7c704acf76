"""NUL bytes in the path or the query string are refused (400): Postgres text cannot hold them."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from memserver.api.middleware.refusal import refuse

NUL = "NUL bytes are not allowed"


class NulBytesMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw: bytes = scope.get("raw_path") or scope["path"].encode()  # as sent: before the path is rewritten
        if b"%00" in scope.get("query_string", b"") or b"%00" in raw or b"\x00" in raw.split(b"?", 1)[0]:
            await refuse(scope, receive, send, 400, NUL)
            return
        await self.app(scope, receive, send)
