"""Entities: list, create (201), get (v2), delete with their memories (v1 by numeric id, v2 by name)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response

from memserver.api.deps import OwnerDep, ReaderDep, RuntimeDep, error_shape, segment
from memserver.api.entities.requests import EntityCreate
from memserver.api.entities.responses import (
    CreatedAgent,
    CreatedApp,
    CreatedRun,
    CreatedUser,
    Entity,
    EntityDeleted,
    EntityPage,
    entity_out,
)
from memserver.api.kit.pagination import Paging, page_query
from memserver.api.kit.wire import JSONResponse, wire
from memserver.domain.principal import Principal
from memserver.domain.scope import entity_type as entity_type_of
from memserver.errors import BadRequest, NotFound
from memserver.services import entities
from memserver.services.runtime import Runtime

router = APIRouter(tags=["entities"])


@router.get("/v1/entities", summary="List users, agents, apps and runs", response_model=EntityPage)
async def list_entities(
    request: Request,
    runtime: RuntimeDep,
    principal: ReaderDep,
    paging: Annotated[Paging, page_query(default_size=100, max_size=1000)],
) -> Response:
    rows, totals = await entities.list_entities(runtime.db, principal, page=paging.page, page_size=paging.size)
    out = paging.envelope(
        request,
        [entity_out(r, owner=principal.user_email, organization=principal.org_name) for r in rows],
        sum(totals.values()),
    )
    for t in ("user", "agent", "app", "run"):
        out[f"total_{t}s"] = totals.get(t, 0)
    return wire(out)


@router.get("/v2/entities/{entity_type}/{entity_id}", summary="Get an entity by name", response_model=list[Entity])
@error_shape("message")
async def get_entity_v2(entity_type: str, entity_id: str, runtime: RuntimeDep, principal: ReaderDep) -> Response:
    etype = entity_type_of(segment(entity_type))
    row = await entities.get_entity(runtime.db, principal, etype, segment(entity_id))
    return wire([] if row is None else [entity_out(row, owner=principal.user_email, organization=principal.org_name)])


@router.delete(
    "/v2/entities/{entity_type}/{entity_id}",
    summary="Delete an entity and its memories (by name)",
    response_model=EntityDeleted,
)
@error_shape("message")
async def delete_entity_v2(entity_type: str, entity_id: str, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    etype = entity_type_of(segment(entity_type))
    deleted = await entities.delete_entity(runtime.db, principal, etype, segment(entity_id))
    return wire({"message": "Entity deleted successfully.", "deleted_memories": deleted})


@router.delete(
    "/v1/entities/{entity_type}/{entity_id}",
    summary="Delete an entity by numeric id (deprecated)",
    response_model=EntityDeleted,
)
@error_shape("error")
async def delete_entity_v1(entity_type: str, entity_id: str, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    etype = entity_type_of(segment(entity_type))
    try:
        numeric = int(segment(entity_id))
    except ValueError:
        raise BadRequest("Invalid entity ID. Must be an integer.") from None
    name = await entities.entity_name_by_id(runtime.db, principal, etype, numeric)
    if name is None:
        raise NotFound("Entity not found")
    deleted = await entities.delete_entity(runtime.db, principal, etype, name)
    return wire({"message": "Entity deleted successfully.", "deleted_memories": deleted})


async def _create(runtime: Runtime, principal: Principal, etype: str, body: EntityCreate) -> Response:
    name = getattr(body, f"{etype}_id")
    if not name or not str(name).strip():
        raise BadRequest(f"{etype}_id is required")
    if etype != "user" and not body.name:
        raise BadRequest("name is required")
    row = await entities.create_entity(runtime.db, principal, etype, str(name), body.metadata)
    out: dict[str, Any] = {
        "id": int(row.id),
        f"{etype}_id": row.name,
        "metadata": row.metadata,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "graph_entities": None,
        "is_deleted": False,
        "project": str(principal.project_id),
    }
    if etype != "user":
        out["name"] = body.name
    return JSONResponse(out, status_code=201)


# 201 bodies go out through orjson (kit.wire.JSONResponse), as they always have: datetimes as +00:00.
@router.post("/v1/users", status_code=201, summary="Create a user entity", response_model=CreatedUser)
@error_shape("error")
async def create_user(body: EntityCreate, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    return await _create(runtime, principal, "user", body)


@router.post("/v1/agents", status_code=201, summary="Create an agent entity", response_model=CreatedAgent)
@error_shape("error")
async def create_agent(body: EntityCreate, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    return await _create(runtime, principal, "agent", body)


@router.post("/v1/apps", status_code=201, summary="Create an app entity", response_model=CreatedApp)
@error_shape("error")
async def create_app(body: EntityCreate, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    return await _create(runtime, principal, "app", body)


@router.post("/v1/runs", status_code=201, summary="Create a run entity", response_model=CreatedRun)
@error_shape("error")
async def create_run(body: EntityCreate, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    return await _create(runtime, principal, "run", body)
