"""Ping (what SDKs call at construction), health, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from memserver import metrics
from memserver.api.deps import PUBLIC, ReaderDep, RuntimeDep, confines_bound_keys
from memserver.api.kit.wire import JSONResponse, wire
from memserver.api.system.responses import Health, Ping, Readiness
from memserver.services.health import readiness, refresh_metrics

router = APIRouter(tags=["system"])


@router.get("/v1/ping", summary="Validate the API key; returns its org and project", response_model=Ping)
@confines_bound_keys  # reads nothing but the key's own description
async def ping(principal: ReaderDep) -> Response:
    body = {
        "status": "ok",
        "org_id": str(principal.org_id),
        "project_id": str(principal.project_id),
        "user_email": principal.user_email,
        "org_name": principal.org_name,
        "project_name": principal.project_name,
        # memserver extension: what this key may do here, so a client (the console) can leave out what it may
        # not: the role in this project (after the key's own cap), in the org, the key's scope and cap
        "key_id": str(principal.key_id),
        "role": principal.role,
        "org_role": principal.org_role,
        "key_scope": principal.key_scope,
        "key_role": principal.key_role,
        # ... the key's default entity ids (MCP clients use them when a call names none)
        **{
            k: v
            for k, v in (
                ("default_user_id", principal.default_user_id),
                ("default_agent_id", principal.default_agent_id),
                # ... and the entity ids a bound key is confined to
                ("bound_user_id", principal.bound_user_id),
                ("bound_agent_id", principal.bound_agent_id),
            )
            if v
        },
    }
    return wire(body)


@router.get(
    "/health",
    summary="Liveness and database check (no auth)",
    dependencies=[PUBLIC],
    response_model=Health,
    responses={503: {"model": Health, "description": "The database does not answer"}},
)
async def health(runtime: RuntimeDep) -> Response:
    try:
        await runtime.db.ping()
        db = "ok"
    except Exception as exc:  # report, don't raise: this endpoint exists to say what is broken
        db = f"error: {type(exc).__name__}"
    body = {
        "status": "ok" if db == "ok" else "degraded",
        "database": db,
        "embedder": runtime.providers.embedder.name,
    }
    return JSONResponse(body, status_code=200 if db == "ok" else 503)


@router.get(
    "/ready",
    summary="Readiness: 200 when the database and the embedder both answer, else 503 (no auth)",
    dependencies=[PUBLIC],
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "The database or the embedder is unavailable"}},
)
async def ready(runtime: RuntimeDep) -> Response:
    checks = await readiness(runtime.db, runtime.providers, runtime.readiness)
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ok else "unavailable", **checks}, status_code=200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (no auth: expose it only to your scraper)",
    include_in_schema=False,
    dependencies=[PUBLIC],
)
async def prometheus_metrics(runtime: RuntimeDep) -> Response:
    await refresh_metrics(runtime.db)
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
