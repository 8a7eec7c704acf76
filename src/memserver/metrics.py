"""Prometheus metrics (served at /metrics). Updated by the HTTP edge, the provider wrappers and, at
scrape time, from the database (job queue) and the connection pools.

One API process per registry: with MEMSERVER_WORKERS > 1 each process answers with its own numbers
(scrape each, or run one process per container as docker-compose does).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_LATENCY = Histogram(
    "memserver_http_request_duration_seconds",
    "HTTP request latency, by route template and status code.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
PROVIDER_LATENCY = Histogram(
    "memserver_provider_duration_seconds",
    "Latency of embedder, LLM and reranker calls, by provider kind, name and outcome (ok / error).",
    ["kind", "provider", "outcome"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
PROVIDER_ERRORS = Counter(
    "memserver_provider_errors_total",
    "Failed embedder, LLM and reranker calls, by provider kind, name and error code.",
    ["kind", "provider", "code"],
    registry=REGISTRY,
)
PROVIDER_ITEMS = Counter(
    "memserver_provider_items_total",
    "Texts sent to the embedder (kind=embedder), LLM calls made (kind=llm) or documents reranked (kind=reranker).",
    ["kind", "provider"],
    registry=REGISTRY,
)
LLM_FALLBACKS = Counter(
    "memserver_llm_fallbacks_total",
    "Features an LLM endpoint refused and memserver stopped sending (system_role, temperature, seed, "
    "max_completion_tokens, json_object, text), counted when first found per endpoint and process.",
    ["quirk"],
    registry=REGISTRY,
)
RERANK_FALLBACKS = Counter(
    "memserver_rerank_fallbacks_total",
    "Searches with rerank=true answered in hybrid order because the reranker failed, by reason (provider_timeout, "
    "provider_unavailable, provider_rejected, provider_invalid_reply, breaker_open).",
    ["reason"],
    registry=REGISTRY,
)
JOBS_PENDING = Gauge(
    "memserver_jobs_pending", "Asynchronous events waiting to run (status PENDING).", registry=REGISTRY
)
JOBS_RUNNING = Gauge("memserver_jobs_running", "Asynchronous events running now.", registry=REGISTRY)
JOBS_OLDEST_PENDING_AGE = Gauge(
    "memserver_jobs_oldest_pending_age_seconds",
    "Age of the oldest PENDING event (0 when none).",
    registry=REGISTRY,
)
DB_POOL = Gauge(
    "memserver_db_pool_connections",
    "Database pool connections by pool and state (checked_out, idle, overflow, size).",
    ["pool", "state"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "memserver_rate_limited_total", "Requests refused with 429 by the rate limiter.", registry=REGISTRY
)
