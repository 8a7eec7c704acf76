"""Error tree. Every error body is JSON with a human-readable `detail` (the Python SDK shows it),
plus the key Mem0 uses on that endpoint (`error` or `message`) so clients that read it keep working."""

from __future__ import annotations

from typing import Any


class MemserverError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, key: str = "error", extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.key = key  # the Mem0 body key for this endpoint: "error" or "message"
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {self.key: self.message}
        body.update(self.extra)
        body["detail"] = self.message
        return body


class BadRequest(MemserverError):
    status_code = 400
    code = "bad_request"


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


INVALID_ADD_INPUT = (
    "Invalid input data. Please refer to the memory creation documentation at "
    "https://docs.mem0.ai/platform/quickstart#4-1-create-memories for correct formatting and required fields."
)


def invalid_add(reason: str) -> BadRequest:
    """The add endpoints' 400 shape: {"error": "400 Bad Request", "details": {"message": ...}}."""
    return BadRequest(
        reason,
        extra={"error": "400 Bad Request", "details": {"message": f"{INVALID_ADD_INPUT} ({reason})"}},
    )
