"""The web console at /console: static HTML, JS and CSS shipped in the package (no build step, no CDN).

The page talks to the same REST API as any client, with a key the user types in (kept in the browser's
sessionStorage only), so it can show nothing the key could not read anyway.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"

# Only this origin's own files: the console must work offline, and an injected script could not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


_RAW_HEADERS = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=SECURITY_HEADERS)


class WithSecurityHeaders:
    """Every response of the wrapped app carries SECURITY_HEADERS: `/console/index.html` is the page too, and
    must be no easier to frame or inject into than `/console`, and its assets are served alike."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in _RAW_HEADERS}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*kept, *_RAW_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount_console(app: FastAPI) -> None:
    """`/console` (the page; a trailing slash is dropped by the edge middleware) and `/console/<file>`."""
    app.router.routes.append(Route("/console", endpoint=index, methods=["GET", "HEAD"]))
    static = WithSecurityHeaders(StaticFiles(directory=STATIC))
    app.router.routes.append(Mount("/console", app=static, name="console"))
