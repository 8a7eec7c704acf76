"""Dream synthesis of a project: its setting where the Platform serves it
(`/api/v1/orgs/organizations/{org_id}/projects/{project_id}/dream/config/`), and a run queued by hand.

Errors are `{"message": ...}` (with `detail`), as the other project routes answer. The path names the
project the request acts on (the role gate resolves it).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from memserver.api.deps import OwnerDep, ReaderDep, RuntimeDep, error_shape
from memserver.api.dream.responses import DreamConfig, DreamRunQueued
from memserver.api.kit.body import json_object
from memserver.api.kit.wire import wire
from memserver.services import dream

router = APIRouter(prefix="/api/v1/orgs/organizations/{org_id}/projects/{project_id}/dream", tags=["dream"])


@router.get(
    "/config", summary="The project's Dream settings (Synthesis: reflection_enabled)", response_model=DreamConfig
)
@error_shape("message")
async def get_config(org_id: str, project_id: str, runtime: RuntimeDep, principal: ReaderDep) -> Response:
    return wire(await dream.get_config(runtime.db, principal, runtime.settings.dream))


@router.patch(
    "/config",
    summary="Turn Synthesis on or off (reflection_enabled); turning it on sets the forward boundary",
    response_model=DreamConfig,
)
@error_shape("message")
async def update_config(
    org_id: str, project_id: str, request: Request, runtime: RuntimeDep, principal: OwnerDep
) -> Response:
    body = await json_object(request)
    return wire(await dream.update_config(runtime.db, runtime.providers, principal, body, runtime.settings.dream))


@router.post(
    "/runs",
    status_code=202,
    summary="Queue a synthesis run of one user now ({user_id}), whatever the cadence",
    response_model=DreamRunQueued,
)
@error_shape("message")
async def queue_run(
    org_id: str, project_id: str, request: Request, runtime: RuntimeDep, principal: OwnerDep
) -> Response:
    body = await json_object(request)
    out = await dream.queue_run(runtime.db, runtime.providers, runtime.queue, principal, body, runtime.settings.dream)
    return wire(out, status_code=202)
