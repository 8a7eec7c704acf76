"""Routing on the raw path, with one spelling of each path.

`%2F` inside an entity id stays inside its segment (handlers unquote each segment). `//` collapses to `/` and a
trailing slash is dropped, so both spellings reach the same route and nothing ever redirects (the Python SDK
treats a 3xx as an error).
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

_SLASHES = re.compile(r"/{2,}")


class RawPathMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        path = _SLASHES.sub("/", raw.split(b"?", 1)[0].decode("utf-8", "replace"))
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        scope["path"] = path
        scope["raw_path"] = path.encode()
        await self.app(scope, receive, send)
