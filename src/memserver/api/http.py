"""HTTP plumbing: fast JSON responses, raw-path normalisation, request ids, error rendering."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from memserver import metrics
from memserver.api.kit.scope import RATELIMIT_HEADERS, REQUEST_ID
from memserver.api.kit.wire import JSONResponse
from memserver.domain import limits as request_limits
from memserver.domain.limits import Limits
from memserver.logs import request_id_var

log = logging.getLogger("memserver.http")
_SLASHES = re.compile(r"/{2,}")


class EdgeMiddleware:
    """Runs before routing.

    * Routes on the raw path: `%2F` inside an entity id stays one segment (handlers unquote).
    * `//` collapses to `/` and a trailing slash is dropped, so both spellings reach the same
      route and nothing ever redirects (the Python SDK treats a 3xx as an error).
    * Assigns a request id (X-Request-ID in, or a new one) for logs and error bodies.
    * Rejects NUL bytes in the path and the query string (Postgres text cannot hold them).
    * Limits the request body to `limits.max_body_bytes` (413), by Content-Length before anything
      is read and by counting the bytes actually received (chunked bodies have no length).
    * Installs the request limits (`domain.limits.current()`) for the validators.
    """

    def __init__(self, app: ASGIApp, limits: Limits | None = None):
        self.app = app
        self.limits = limits or Limits()

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
        rid = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                rid = value.decode("latin-1")[:64]
                break
        rid = rid or uuid.uuid4().hex[:16]
        scope[REQUEST_ID] = rid  # for the outermost 500 handler, after the contextvar reset
        token = request_id_var.set(rid)
        limits_token = request_limits.use(self.limits)
        max_body = self.limits.max_body_bytes
        too_large = f"Request body larger than {max_body} bytes (MEMSERVER_LIMITS__MAX_BODY_BYTES)"
        declared = -1
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
        received = 0

        async def receive_counted() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    # FastAPI re-raises HTTPExceptions from body reading; the handler renders the JSON.
                    raise StarletteHTTPException(413, detail=too_large)
            return message

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                extra = scope.get(RATELIMIT_HEADERS, [])  # set by api.deps.authenticate
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode()), *extra]
            await send(message)

        started = False
        status = 500
        t0 = time.perf_counter()

        async def send_tracking(message: Any) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
            await send_with_id(message)

        try:
            refusal: tuple[int, str] | None = None
            if b"%00" in scope.get("query_string", b"") or b"%00" in raw or "\x00" in path:
                refusal = (400, "NUL bytes are not allowed")
            elif declared > max_body:
                refusal = (413, too_large)
            if refusal is not None:
                status, message = refusal
                body = {"error": message, "detail": message, "request_id": rid}
                await JSONResponse(body, status_code=status)(scope, receive, send_with_id)
                return
            await self.app(scope, receive_counted, send_tracking)
        except Exception:
            # Answer the 500 here instead of re-raising: a re-raised error makes the server drop the
            # keep-alive connection, and the client's next request on it would fail too.
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            body = {"error": "internal_error", "detail": "Internal server error", "request_id": rid}
            status = 500
            await JSONResponse(body, status_code=500)(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"  # bounded label values: templates only
            metrics.HTTP_LATENCY.labels(scope.get("method", ""), template, str(status)).observe(
                time.perf_counter() - t0
            )
            request_limits.reset(limits_token)
            request_id_var.reset(token)
