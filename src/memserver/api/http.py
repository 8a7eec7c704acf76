"""HTTP plumbing: fast JSON responses, raw-path normalisation, request ids, error rendering."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from memserver.errors import MemserverError
from memserver.providers.errors import ProviderError

log = logging.getLogger("memserver.http")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SLASHES = re.compile(r"/{2,}")


class JSONResponse(StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


class EdgeMiddleware:
    """Runs before routing.

    * Routes on the raw path: `%2F` inside an entity id stays one segment (handlers unquote).
    * `//` collapses to `/` and a trailing slash is dropped, so both spellings reach the same
      route and nothing ever redirects (the Python SDK treats a 3xx as an error).
    * Assigns a request id (X-Request-ID in, or a new one) for logs and error bodies.
    * Rejects NUL bytes in the query string (Postgres text cannot hold them).
    """

    def __init__(self, app: ASGIApp):
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
        rid = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                rid = value.decode("latin-1")[:64]
                break
        rid = rid or uuid.uuid4().hex[:16]
        scope["memserver.request_id"] = rid  # for the outermost 500 handler, after the contextvar reset
        token = request_id_var.set(rid)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        started = False

        async def send_tracking(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send_with_id(message)

        try:
            if b"%00" in scope.get("query_string", b""):
                resp = JSONResponse(
                    {
                        "error": "NUL bytes are not allowed",
                        "detail": "NUL bytes are not allowed",
                        "request_id": rid,
                    },
                    status_code=400,
                )
                await resp(scope, receive, send_with_id)
                return
            await self.app(scope, receive, send_tracking)
        except Exception:
            # Answer the 500 here instead of re-raising: a re-raised error makes the server drop the
            # keep-alive connection, and the client's next request on it would fail too.
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            body = {"error": "internal_error", "detail": "Internal server error", "request_id": rid}
            await JSONResponse(body, status_code=500)(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


INVALID_ADD_INPUT = (
    "Invalid input data. Please refer to the memory creation documentation at "
    "https://docs.mem0.ai/platform/quickstart#4-1-create-memories for correct formatting and required fields."
)


def _error_response(status: int, body: dict[str, Any], request: Request | None = None) -> JSONResponse:
    rid = request.scope.get("memserver.request_id") if request is not None else None
    body.setdefault("request_id", rid or request_id_var.get())
    return JSONResponse(body, status_code=status)


def route_shape(request: Request) -> str:
    """The error shape the matched route declared ('error', 'message' or 'add'); 'error' by default.

    A route that serves two kinds of request (v3 list also takes pre-release adds) may set the
    shape for one request in `scope["memserver.error_shape"]`.
    """
    if shape := request.scope.get("memserver.error_shape"):
        return str(shape)
    route = request.scope.get("route")
    return str(getattr(getattr(route, "endpoint", None), "error_shape", "error"))


def error_body(message: str, shape: str, status: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Mem0 error body: the route's key (`error` / `message`), any extra fields, and `detail`.

    The add endpoints answer a 400 as {"error": "400 Bad Request", "details": {"message": ...}}.
    """
    if shape == "add" and status == 400:
        body: dict[str, Any] = {
            "error": "400 Bad Request",
            "details": {"message": f"{INVALID_ADD_INPUT} ({message})"},
        }
    else:
        body = {"message" if shape == "message" else "error": message}
    body.update(extra or {})
    body["detail"] = message
    return body


async def memserver_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MemserverError)
    response = _error_response(
        exc.status_code, error_body(exc.message, route_shape(request), exc.status_code, exc.extra)
    )
    if exc.status_code == 429 and "retry_after" in exc.extra:  # back-pressure: when to come back
        response.headers["Retry-After"] = str(int(exc.extra["retry_after"]))
    return response


async def provider_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProviderError)
    log.warning("provider failure: %s", exc)
    return _error_response(exc.status_code, {"error": exc.code, "detail": str(exc)})


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Invalid bodies are 400s (the Mem0 clients map 400 to ValidationError), never 422."""
    assert isinstance(exc, RequestValidationError)
    message = _validation_message(exc)
    return _error_response(400, error_body(message, route_shape(request), 400))


async def http_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "error"
    if exc.status_code == 404:
        detail = f"Not found: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        detail = f"Method {request.method} is not allowed on {request.url.path}"
    return _error_response(exc.status_code, {"error": detail, "detail": detail})


async def unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error_response(500, {"error": "internal_error", "detail": "Internal server error"}, request)
