"""Error tree. Services raise these with a plain message; the HTTP layer renders them in the shape the
route declares (`api.deps.error_shape`): JSON with a human-readable `detail` (the Python SDK shows it),
plus the key Mem0 uses on that endpoint (`error` or `message`) so clients that read it keep working."""

from __future__ import annotations

from typing import Any


class MemserverError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}  # more fields for the body (e.g. a memory id)


class BadRequest(MemserverError):
    status_code = 400
    code = "bad_request"


def invalid(errors: dict[str, list[str]]) -> BadRequest:
    """A 400 that names the fields it is about (`errors: {field: [message]}`, a memserver extension beside the
    route's Mem0 key), so a client can show each message at its field. Its message, what clients read in
    `message`/`error` and `detail`, is the first field's, as when only the first problem was reported."""
    first = next(iter(errors.values()))[0]
    return BadRequest(first, extra={"errors": errors})


def invalid_field(field: str, message: str) -> BadRequest:
    """`invalid` for one field."""
    return invalid({field: [message]})


class Unauthorized(MemserverError):
    status_code = 401
    code = "unauthorized"


class Forbidden(MemserverError):
    status_code = 403
    code = "forbidden"


class NotFound(MemserverError):
    status_code = 404
    code = "not_found"


class Conflict(MemserverError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(MemserverError):
    status_code = 413
    code = "payload_too_large"


class ServiceUnavailable(MemserverError):
    status_code = 503
    code = "service_unavailable"


class TooManyRequests(MemserverError):
    status_code = 429
    code = "too_many_requests"


class NotConfigured(MemserverError):
    """The request needs a capability this server was not configured with (e.g. an LLM)."""

    status_code = 501
    code = "not_configured"
