"""API keys of an organisation (memserver extension): `/api/v1/orgs/organizations/{org_id}/keys/`.

An org OWNER's org-scoped key lists the org's keys (never a key or its hash), creates one (the key is in that
answer only) and revokes one; the rules are `memserver keys`' (`services.keys`). A revoked key stops working
at once in the process that revoked it, and in the others within MEMSERVER_AUTH__KEY_CACHE_TTL_S.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from memserver.api.deps import OrgOwnerDep, RuntimeDep, error_shape, segment
from memserver.api.kit.body import json_object
from memserver.api.kit.wire import JSONResponse, Message, wire
from memserver.api.orgs.responses import KeyCreated, Keys, key_out
from memserver.services import keys

router = APIRouter(prefix="/api/v1/orgs/organizations", tags=["organizations and projects"])


@router.get("/{org_id}/keys", summary="The organization's API keys (memserver extension)", response_model=Keys)
@error_shape("message")
async def list_keys(
    org_id: str,
    runtime: RuntimeDep,
    principal: OrgOwnerDep,
    project_id: str | None = None,
    include_revoked: bool = False,
) -> Response:
    """Never the key or its hash; `project_id` keeps one project's keys, `include_revoked` adds revoked ones."""
    rows = await keys.list_keys(
        runtime.db, principal, segment(org_id), project_id=project_id, include_revoked=include_revoked
    )
    return wire({"keys": [key_out(r) for r in rows]})


@router.post(
    "/{org_id}/keys",
    status_code=201,
    summary="Create an API key, shown once (memserver extension)",
    response_model=KeyCreated,
    responses={400: {"description": "Field-keyed errors (`errors`)"}},
)
@error_shape("message")
async def create_key(org_id: str, request: Request, runtime: RuntimeDep, principal: OrgOwnerDep) -> JSONResponse:
    """`{name, project_id, email, scope?, role?, bind_user_id?, bind_agent_id?, default_user_id?,
    default_agent_id?}`, as `memserver keys create` takes them; a new email becomes a member."""
    row, key = await keys.create_key(runtime.db, principal, segment(org_id), await json_object(request))
    body = {"message": "Key created. It is shown once: store it now.", "key": key, **key_out(row)}
    return JSONResponse(body, status_code=201, headers={"Cache-Control": "no-store"})


@router.delete(
    "/{org_id}/keys/{key_id}",
    summary="Revoke an API key (memserver extension)",
    response_model=Message,
    responses={404: {"description": "No such active key in the organization"}},
)
@error_shape("message")
async def revoke_key(org_id: str, key_id: str, runtime: RuntimeDep, principal: OrgOwnerDep) -> Response:
    await keys.revoke_key(runtime.db, principal, segment(org_id), segment(key_id))
    runtime.key_cache.clear()  # this process stops honouring it at once
    return wire({"message": "Key revoked."})
