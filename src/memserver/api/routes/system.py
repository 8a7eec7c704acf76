"""Ping (what SDKs call at construction) and health."""

from __future__ import annotations

from fastapi import APIRouter, Response

from memserver.api.deps import PrincipalDep, StateDep
from memserver.api.http import JSONResponse
from memserver.api.responses import Health, Ping, wire

router = APIRouter(tags=["system"])


@router.get("/v1/ping", summary="Validate the API key; returns its org and project", response_model=Ping)
async def ping(principal: PrincipalDep) -> Response:
    body = {
        "status": "ok",
        "org_id": str(principal.org_id),
        "project_id": str(principal.project_id),
        "user_email": principal.user_email,
        "org_name": principal.org_name,
        "project_name": principal.project_name,
    }
    return wire(body)


@router.get(
    "/health",
    summary="Liveness and database check (no auth)",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database does not answer"}},
)
async def health(state: StateDep) -> Response:
    try:
        await state.db.ping()
        db = "ok"
    except Exception as exc:  # report, don't raise: this endpoint exists to say what is broken
        db = f"error: {type(exc).__name__}"
    body = {
        "status": "ok" if db == "ok" else "degraded",
        "database": db,
        "embedder": state.providers.embedder.name,
    }
    return JSONResponse(body, status_code=200 if db == "ok" else 503)
