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


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=SECURITY_HEADERS)


def mount_console(app: FastAPI) -> None:
    """`/console` (the page; a trailing slash is dropped by the edge middleware) and `/console/<file>`."""
    app.router.routes.append(Route("/console", endpoint=index, methods=["GET", "HEAD"]))
    app.router.routes.append(Mount("/console", app=StaticFiles(directory=STATIC), name="console"))
