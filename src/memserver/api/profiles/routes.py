"""User profiles (Python mem0ai 2.2+, npm 3.3+): settings, jobs with Idempotency-Key, and a user's profile.

Errors are `{"error": {"code", "message"}}` (plus `detail`), as the Platform's profile routes answer.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from memserver.api.deps import OwnerDep, ReaderDep, RuntimeDep, error_shape, segment
from memserver.api.kit.body import json_object
from memserver.api.kit.wire import JSONResponse, wire
from memserver.api.profiles.responses import EntityProfile, ProfileJob, ProfileJobAccepted, ProfileSettings
from memserver.services import profiles

router = APIRouter(tags=["profiles"])


@router.get(
    "/v2/profiles/settings",
    summary="Profile settings: enabled, and a JSON schema per entity type",
    response_model=ProfileSettings,
)
@error_shape("error")
async def get_settings(runtime: RuntimeDep, principal: ReaderDep) -> Response:
    return wire(await profiles.get_settings(runtime.db, principal))


@router.post(
    "/v2/profiles/settings",
    summary="Change profile settings (omitted = unchanged, null = cleared)",
    response_model=ProfileSettings,
)
@error_shape("error")
async def update_settings(request: Request, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    return wire(await profiles.update_settings(runtime.db, principal, await json_object(request)))


@router.post(
    "/v2/profiles/jobs",
    status_code=202,
    summary="Generate profiles: trigger (one entity) or sample",
    response_model=ProfileJobAccepted,
)
@error_shape("error")
async def create_job(request: Request, runtime: RuntimeDep, principal: OwnerDep) -> JSONResponse:
    body = await json_object(request)
    key = request.headers.get("idempotency-key")
    out = await profiles.create_job(runtime.db, runtime.providers, runtime.queue, principal, body, key)
    return JSONResponse(out, status_code=202)


@router.get(
    "/v2/profiles/jobs/{job_id}", summary="A profile job's status and per-entity results", response_model=ProfileJob
)
@error_shape("error")
async def get_job(job_id: str, runtime: RuntimeDep, principal: ReaderDep) -> Response:
    return wire(await profiles.get_job(runtime.db, principal, segment(job_id)))


@router.get(
    "/v2/entities/{entity_type}/{entity_id}/profile",
    summary="An entity's profile and its status",
    response_model=EntityProfile,
)
@error_shape("error")
async def get_profile(entity_type: str, entity_id: str, runtime: RuntimeDep, principal: ReaderDep) -> Response:
    profile = await profiles.get_profile(
        runtime.db, runtime.providers, runtime.queue, principal, segment(entity_type), segment(entity_id)
    )
    return wire(profile)
