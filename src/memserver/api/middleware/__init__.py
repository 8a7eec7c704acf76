"""The HTTP edge: one concern per middleware, and their order, declared once in `edge_stack`.

Pure ASGI classes (as Starlette's own): each passes the same scope on, so what an inner one writes into it (the
matched route, the rate-limit headers) is seen by the outer ones.
"""

from __future__ import annotations

from starlette.middleware import Middleware

from memserver.api.middleware.body_limit import BodyLimitMiddleware
from memserver.api.middleware.internal_error import InternalErrorMiddleware
from memserver.api.middleware.nul_bytes import NulBytesMiddleware
from memserver.api.middleware.ratelimit_headers import RateLimitHeadersMiddleware
from memserver.api.middleware.raw_path import RawPathMiddleware
from memserver.api.middleware.request_id import RequestIdMiddleware
from memserver.api.middleware.request_limits import RequestLimitsMiddleware
from memserver.api.middleware.request_metrics import RequestMetricsMiddleware
from memserver.domain.limits import Limits


def edge_stack(limits: Limits, *, rate_limited: bool) -> list[Middleware]:
    """The middleware every request passes, outermost first (`FastAPI(middleware=...)` keeps this order).

    `rate_limited`: a rate limit is configured (MEMSERVER_RATELIMIT__*); without one no request has rate-limit
    headers, and their layer is left out (each layer costs about 1 us per request: bench.edge_overhead)."""
    return [
        # Outermost: it times everything below, refusals, 500s and unmatched paths (`<unmatched>`) included.
        Middleware(RequestMetricsMiddleware),
        # Outside the request id, so a response's headers end `x-request-id, x-ratelimit-*`.
        *([Middleware(RateLimitHeadersMiddleware)] if rate_limited else []),
        # Around everything that answers: every response carries the id, the 500 and the refusals included.
        Middleware(RequestIdMiddleware),
        # Inside the request id (its 500 carries it), around the refusals and the app.
        Middleware(InternalErrorMiddleware),
        # Before the path is rewritten and routed: it reads the path as it was sent.
        Middleware(NulBytesMiddleware),
        # Before routing: the router sees one spelling of each path.
        Middleware(RawPathMiddleware),
        # Before anything reads the body (authentication reads it for a named project).
        Middleware(BodyLimitMiddleware, max_body_bytes=limits.max_body_bytes, max_import_bytes=limits.max_import_bytes),
        # Innermost: the limits hold for the app (validators, handlers) and nothing else needs them.
        Middleware(RequestLimitsMiddleware, limits=limits),
    ]
