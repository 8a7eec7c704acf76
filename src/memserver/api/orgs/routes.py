"""Organisations, projects (with their settings) and members: `/api/v1/orgs/organizations/...`.

Errors here are `{"message": ...}` (with `detail`), as on the Platform. Authorisation is checked by
`services.permissions` / `services.project_settings`; a path that names a project is resolved like an
`org_id`/`project_id` a request names (`auth.act_on`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from memserver.api.deps import OrgOwnerDep, OwnerDep, ReaderDep, RuntimeDep, error_shape, segment
from memserver.api.kit.body import json_object
from memserver.api.kit.wire import JSONResponse, Message, wire
from memserver.api.orgs.requests import MemberBody, NameBody
from memserver.api.orgs.responses import (
    Members,
    Org,
    OrgCreated,
    OrgSummary,
    Project,
    ProjectCreated,
    ProjectUpdated,
    member_out,
    org_out,
    project_out,
    project_updated,
)
from memserver.domain.principal import Principal
from memserver.errors import BadRequest
from memserver.services import auth, orgs, project_settings
from memserver.services.runtime import Runtime

router = APIRouter(prefix="/api/v1/orgs/organizations", tags=["organizations and projects"])


async def _project(request: Request, principal: Principal, org_id: str, project_id: str) -> Principal:
    runtime: Runtime = request.app.state.runtime
    return await auth.act_on(runtime.db, runtime.key_cache, principal, segment(org_id), segment(project_id))


# -- organisations --------------------------------------------------------------------------------
@router.get("", summary="Organizations the key's member belongs to", response_model=list[OrgSummary])
@error_shape("message")
async def list_orgs(runtime: RuntimeDep, principal: ReaderDep) -> Response:
    rows = await orgs.list_orgs_of(runtime.db, principal)
    body = [
        {
            "org_id": str(r["id"]),
            "id": str(r["id"]),
            "name": r["name"],
            "created_at": r["created_at"],
            "updated_at": r["updated_at"],
            "is_default": r["id"] == principal.org_id,
            "is_owner": r["role"] == "OWNER",
            "user_role": r["role"],
            "projects": r["projects"],
        }
        for r in rows
    ]
    return wire(body)


@router.post("", status_code=201, summary="Create an organization owned by the caller", response_model=OrgCreated)
@error_shape("message")
async def create_org(body: NameBody, runtime: RuntimeDep, principal: OrgOwnerDep) -> JSONResponse:
    if not body.name or not body.name.strip():
        raise BadRequest("name is required", extra={"errors": {"name": ["This field is required."]}})
    org_id = await orgs.create_org_for(runtime.db, principal, body.name.strip())
    return JSONResponse({"message": "Organization created successfully.", "org_id": str(org_id)}, status_code=201)


@router.get("/{org_id}", summary="Get an organization", response_model=Org)
@error_shape("message")
async def get_org(org_id: str, runtime: RuntimeDep, principal: ReaderDep) -> Response:
    org, members = await orgs.get_org(runtime.db, principal, segment(org_id))
    return wire(org_out(org, members, principal))


@router.delete("/{org_id}", summary="Delete an organization with all its projects", response_model=Message)
@error_shape("message")
async def delete_org(org_id: str, runtime: RuntimeDep, principal: OrgOwnerDep) -> Response:
    await orgs.delete_org(runtime.db, principal, segment(org_id))
    runtime.key_cache.clear()
    return wire({"message": "Organization deleted successfully!"})


@router.get("/{org_id}/members", summary="Members of an organization", response_model=Members)
@error_shape("message")
async def org_members(org_id: str, runtime: RuntimeDep, principal: ReaderDep) -> Response:
    rows = await orgs.org_members(runtime.db, principal, segment(org_id))
    return wire({"members": [member_out(m) for m in rows]})


@router.post("/{org_id}/members", status_code=201, summary="Add a member to an organization", response_model=Message)
@error_shape("message")
async def add_org_member(org_id: str, body: MemberBody, runtime: RuntimeDep, principal: OrgOwnerDep) -> JSONResponse:
    await orgs.add_org_member(runtime.db, principal, segment(org_id), body.email or "", body.role or "")
    return JSONResponse({"message": "User added to the organization."}, status_code=201)


@router.put("/{org_id}/members", summary="Change a member's organization role", response_model=Message)
@error_shape("message")
async def set_org_member(org_id: str, body: MemberBody, runtime: RuntimeDep, principal: OrgOwnerDep) -> Response:
    await orgs.set_org_member_role(runtime.db, principal, segment(org_id), body.email or "", body.role or "")
    runtime.key_cache.clear()
    return wire({"message": "User role updated successfully"})


@router.delete(
    "/{org_id}/members", summary="Remove a member (JSON body {email}); its keys stop working", response_model=Message
)
@error_shape("message")
async def remove_org_member(org_id: str, body: MemberBody, runtime: RuntimeDep, principal: OrgOwnerDep) -> Response:
    await orgs.remove_org_member(runtime.db, principal, segment(org_id), body.email or "")
    runtime.key_cache.clear()
    return wire({"message": "User removed from organization."})


# -- projects -------------------------------------------------------------------------------------
@router.get("/{org_id}/projects", summary="Projects of the organization the key reaches", response_model=list[Project])
@error_shape("message")
async def list_projects(org_id: str, runtime: RuntimeDep, principal: ReaderDep) -> Response:
    rows = await orgs.projects_of(runtime.db, principal, segment(org_id))
    return wire([project_out(r, [], replace(principal, project_id=r.id, role=r.role)) for r in rows])


@router.post("/{org_id}/projects", summary="Create a project", response_model=ProjectCreated)
@error_shape("message")
async def create_project(org_id: str, body: NameBody, runtime: RuntimeDep, principal: OrgOwnerDep) -> Response:
    pid = await orgs.create_project_for(runtime.db, principal, segment(org_id), body.name or "", body.description)
    return wire({"message": "Project created successfully.", "project_id": str(pid)})


@router.get(
    "/{org_id}/projects/{project_id}",
    summary="Get a project with all its settings (`fields` ignored)",
    response_model=Project,
)
@error_shape("message")
async def get_project(
    org_id: str,
    project_id: str,
    request: Request,
    runtime: RuntimeDep,
    principal: ReaderDep,
    fields: Annotated[list[str] | None, Query()] = None,
) -> Response:
    acting = await _project(request, principal, org_id, project_id)
    row, members = await project_settings.get_project(runtime.db, acting)
    return wire(project_out(row, members, acting))


@router.patch(
    "/{org_id}/projects/{project_id}",
    summary="Update project settings (null clears one)",
    response_model=ProjectUpdated,
)
@error_shape("message")
async def update_project(
    org_id: str, project_id: str, request: Request, runtime: RuntimeDep, principal: OwnerDep
) -> Response:
    body = await json_object(request)
    acting = await _project(request, principal, org_id, project_id)
    done = await project_settings.update_project(runtime.db, acting, body, embedder=runtime.providers.embedder.name)
    return wire(project_updated(done))


@router.delete("/{org_id}/projects/{project_id}", summary="Delete a project and all its data", response_model=Message)
@error_shape("message")
async def delete_project(
    org_id: str, project_id: str, request: Request, runtime: RuntimeDep, principal: OwnerDep
) -> Response:
    acting = await _project(request, principal, org_id, project_id)
    await orgs.delete_project(runtime.db, acting)
    runtime.key_cache.clear()
    return wire({"message": "Project and related data deleted successfully."})


@router.get(
    "/{org_id}/projects/{project_id}/members", summary="Members with a role in the project", response_model=Members
)
@error_shape("message")
async def project_members(
    org_id: str, project_id: str, request: Request, runtime: RuntimeDep, principal: ReaderDep
) -> Response:
    acting = await _project(request, principal, org_id, project_id)
    return wire({"members": [member_out(m) for m in await orgs.project_members(runtime.db, acting)]})


@router.post("/{org_id}/projects/{project_id}/members", summary="Add a member to the project", response_model=Message)
@error_shape("message")
async def add_project_member(
    org_id: str, project_id: str, body: MemberBody, request: Request, runtime: RuntimeDep, principal: OwnerDep
) -> Response:
    acting = await _project(request, principal, org_id, project_id)
    await orgs.set_project_member(runtime.db, acting, body.email or "", body.role or "", adding=True)
    runtime.key_cache.clear()
    return wire({"message": "User added to the project successfully."})


@router.put("/{org_id}/projects/{project_id}/members", summary="Change a member's project role", response_model=Message)
@error_shape("message")
async def set_project_member(
    org_id: str, project_id: str, body: MemberBody, request: Request, runtime: RuntimeDep, principal: OwnerDep
) -> Response:
    acting = await _project(request, principal, org_id, project_id)
    await orgs.set_project_member(runtime.db, acting, body.email or "", body.role or "", adding=False)
    runtime.key_cache.clear()
    return wire({"message": "User role updated successfully."})


@router.delete(
    "/{org_id}/projects/{project_id}/members",
    summary="Remove a member from the project (?email=)",
    response_model=Message,
)
@error_shape("message")
async def remove_project_member(
    org_id: str, project_id: str, request: Request, runtime: RuntimeDep, principal: OwnerDep, email: str = ""
) -> Response:
    acting = await _project(request, principal, org_id, project_id)
    await orgs.remove_project_member(runtime.db, acting, email)
    runtime.key_cache.clear()
    return wire({"message": "Member removed from the project"})
