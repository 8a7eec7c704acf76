"""Keys of the ASGI scope by which the edge's parts hand each other a value for one request."""

from __future__ import annotations

# The request id (middleware.request_id); error bodies read it here, after the contextvar has been reset.
REQUEST_ID = "memserver.request_id"
# The error shape for this request, when a route serves two kinds of request (v3 list also takes adds).
ERROR_SHAPE = "memserver.error_shape"
# X-RateLimit-* headers (set by deps.authenticate, sent by middleware.ratelimit_headers).
RATELIMIT_HEADERS = "memserver.ratelimit_headers"
