"""Errors as JSON in the shape of the route that was called (`deps.error_shape`): Mem0's key (`error` /
`message`, or the add routes' 400 shape), `detail`, and the request id. Invalid input is a 400, never a 422."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from memserver.api.kit.scope import ERROR_SHAPE, REQUEST_ID
from memserver.api.kit.wire import JSONResponse
from memserver.errors import MemserverError
from memserver.logs import request_id_var
from memserver.providers.errors import ProviderError, public_message

log = logging.getLogger("memserver.http")


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""
    app.add_exception_handler(MemserverError, memserver_error_handler)
    app.add_exception_handler(ProviderError, provider_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)


INVALID_ADD_INPUT = (
    "Invalid input data. Please refer to the memory creation documentation at "
    "https://docs.mem0.ai/platform/quickstart#4-1-create-memories for correct formatting and required fields."
)


def _error_response(status: int, body: dict[str, Any], request: Request | None = None) -> JSONResponse:
    rid = request.scope.get(REQUEST_ID) if request is not None else None
    body.setdefault("request_id", rid or request_id_var.get())
    return JSONResponse(body, status_code=status)


def route_shape(request: Request) -> str:
    """The error shape the matched route declared ('error', 'message' or 'add'); 'error' by default.

    A route that serves two kinds of request (v3 list also takes pre-release adds) may set the
    shape for one request in `scope[ERROR_SHAPE]`.
    """
    if shape := request.scope.get(ERROR_SHAPE):
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
    """The upstream's own text (which can quote a key suffix or internal hosts) goes to the log only."""
    assert isinstance(exc, ProviderError)
    log.warning("provider failure: %s", exc)
    message = public_message(exc) + " The server log has the details under this request_id."
    return _error_response(exc.status_code, {"error": exc.code, "detail": message}, request)


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
