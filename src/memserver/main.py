"""The FastAPI application: lifespan resources, middleware, error handlers, routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from starlette.routing import Route

from memserver import __version__, logs
from memserver.api import error_handlers, openapi
from memserver.api.add import routes as add
from memserver.api.documents import routes as documents
from memserver.api.dream import routes as dream
from memserver.api.entities import routes as entities
from memserver.api.events import routes as events
from memserver.api.graph import routes as graph
from memserver.api.insights import routes as insights
from memserver.api.kit.wire import JSONResponse
from memserver.api.listing import routes as listing
from memserver.api.memories import routes as memories
from memserver.api.middleware import edge_stack
from memserver.api.orgs import routes as orgs
from memserver.api.orgs import routes_keys as org_keys
from memserver.api.profiles import routes as profiles
from memserver.api.search import routes as search
from memserver.api.system import routes as system
from memserver.api.transfer import routes as transfer
from memserver.api.usage import routes as usage_routes
from memserver.api.webhooks import routes as webhooks
from memserver.config import Settings, get_settings
from memserver.console import mount_console
from memserver.domain.limits import Limits
from memserver.mcp.http import McpEndpoint
from memserver.providers.errors import ProviderError
from memserver.providers.registry import build_providers
from memserver.services import ratelimit, usage
from memserver.services.key_cache import KeyCache
from memserver.services.key_slots import KeySlots
from memserver.services.runtime import Runtime
from memserver.storage.db import Database
from memserver.storage.migrate import check_embedding_dim
from memserver.worker.runners import build_queue

log = logging.getLogger(__name__)

DESCRIPTION = """
memserver speaks the Mem0 Platform REST API. Point Mem0's official SDKs at it with
`host="http://127.0.0.1:8000"` and a memserver key (`Authorization: Token <key>`).
Every path works with and without its trailing slash.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    url = settings.async_database_url()
    if url is None:
        raise RuntimeError("create_app needs a database URL; `memserver serve` starts the embedded one")

    mcp = McpEndpoint(timeout_s=settings.mcp.timeout_s) if settings.mcp.enabled else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(url, settings.db, hnsw_ef_search=settings.search.hnsw_ef_search)
        async with db.connect() as conn:
            await check_embedding_dim(conn, settings.embedder.dim)
        providers = build_providers(settings)
        queue = build_queue(settings, db, providers)
        limiter = ratelimit.build_limiter(settings.ratelimit, settings.redis.url)
        if providers.graph_mirror is not None:  # constraints and indexes first; a Neo4j outage must not stop us
            try:
                await providers.graph_mirror.setup()
            except ProviderError:
                log.warning("the Neo4j graph mirror is unreachable; its setup is retried with the first sync")
        app.state.runtime = runtime = Runtime(
            settings=settings,
            db=db,
            providers=providers,
            key_cache=KeyCache(settings.auth.key_cache_ttl_s, settings.auth.key_cache_size),
            queue=queue,
            limiter=limiter,
            summary_slots=KeySlots(
                settings.llm.reader_summaries_at_once, "summaries", "MEMSERVER_LLM__READER_SUMMARIES_AT_ONCE"
            ),
        )
        await queue.start()
        flusher = asyncio.create_task(usage.flush_every(runtime.usage, db, settings.usage.flush_interval_s))
        try:
            async with AsyncExitStack() as stack:
                if mcp is not None:
                    await stack.enter_async_context(mcp.run(app))  # the app its tools call in-process
                yield
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            with contextlib.suppress(Exception):  # logged by flush; nothing more can be done at shutdown
                await runtime.usage.flush(db)
            await queue.aclose()
            await limiter.aclose()
            await providers.aclose()
            await db.dispose()

    app = FastAPI(
        title="memserver",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
        default_response_class=JSONResponse,
        middleware=edge_stack(request_limits(settings), rate_limited=settings.ratelimit.enabled),
    )
    error_handlers.install(app)
    for feature in (  # in this order: the first route that matches a path serves it
        system,
        add,
        listing,
        search,
        memories,
        insights,
        documents,
        profiles,
        entities,
        events,
        orgs,
        dream,
        org_keys,
        transfer,
        webhooks,
        graph,
        usage_routes,
    ):
        app.include_router(feature.router)
    app.openapi = lambda: openapi.build(app)  # type: ignore[method-assign]
    if mcp is not None:
        app.router.routes.append(Route("/mcp", endpoint=mcp))
    if settings.console.enabled:
        mount_console(app)
    return app


def request_limits(settings: Settings) -> Limits:
    """The bounds the HTTP edge checks: MEMSERVER_LIMITS__*, and the counts and sizes of an add's media."""
    d = settings.documents
    return Limits(
        **settings.limits.model_dump(),
        max_document_parts=d.max_parts,
        max_document_bytes=d.max_bytes,
        max_images=d.max_images,
        max_image_bytes=d.max_image_bytes,
    )


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` with several worker processes."""
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)  # a fresh process: logging is not set up yet
    return create_app(settings)
