"""The OpenAPI document as memserver answers: invalid input is a 400 (never FastAPI's 422), and every
error any route can give (auth, limits, rate limits, provider failures) is declared with its JSON body."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from memserver.api.deps import route_role

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "description": "Every error is JSON with a human-readable `detail`, plus the Mem0 key of the route "
    "(`error` or `message`; the add routes answer a 400 as `{error, details: {message}}`) and the request id.",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string"},
        "error": {"anyOf": [{"type": "string"}, {"type": "object"}]},
        "message": {"type": "string"},
        "details": {"type": "object"},
        "request_id": {"type": "string"},
    },
    "additionalProperties": True,
}

_ERRORS = {
    "400": "Invalid input (validation errors and documented limits)",
    "401": "Missing or invalid API key",
    "403": "Not allowed: the key's role is below the operation's `x-memserver-role` (or e.g. an immutable memory)",
    "404": "Not found (or a page past the end)",
    "409": "Conflict with existing data",
    "413": "Request body larger than MEMSERVER_LIMITS__MAX_BODY_BYTES",
    "429": "Rate limit exceeded (Retry-After and X-RateLimit-* headers)",
    "501": "The request needs an LLM and none is configured (MEMSERVER_LLM__BASE_URL)",
    "502": "The embedding or LLM provider failed",
    "503": "A dependency is unavailable (database busy, provider unreachable)",
    "504": "The embedding or LLM provider timed out",
}
_PUBLIC = {"/health": ("503",), "/ready": ("503",)}  # no key: only their own failure


def build(app: FastAPI) -> dict[str, Any]:
    """app.openapi: generated once, then cached on the app like FastAPI's own."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, servers=app.servers
    )
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for schema_name in ("HTTPValidationError", "ValidationError"):
        components.pop(schema_name, None)
    ref = {"$ref": "#/components/schemas/Error"}
    for path, ops in doc.get("paths", {}).items():
        for op in ops.values():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            codes = _PUBLIC.get(path, tuple(_ERRORS))
            for code in codes:
                entry = responses.setdefault(code, {"description": _ERRORS[code]})
                if not entry.get("content", {}).get("application/json", {}).get("schema"):  # a route's own model wins
                    entry["content"] = {"application/json": {"schema": ref}}
            if "429" in codes:
                responses["429"]["headers"] = {
                    name: {"schema": {"type": "integer"}}
                    for name in ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
                }
    _declare_roles(app, doc)
    app.openapi_schema = doc
    return doc


def _declare_roles(app: FastAPI, doc: dict[str, Any]) -> None:
    """Each operation's `x-memserver-role`: the role its route declares (api.deps.Role)."""
    paths = doc.get("paths", {})
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        ops = paths.get(str(ctx.path_format))
        if not isinstance(route, APIRoute) or ops is None:
            continue
        role = route_role(route)
        for method in route.methods or ():
            if method.lower() in ops and role is not None:
                ops[method.lower()]["x-memserver-role"] = role.value
