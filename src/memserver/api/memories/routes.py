"""One memory (get/update/delete/history), delete-all by entity, batch update/delete, history pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from memserver.api.deps import OwnerDep, ReaderDep, RuntimeDep, confines_bound_keys, error_shape, segment
from memserver.api.kit.body import json_object
from memserver.api.kit.entity_query import EntityIdsQuery
from memserver.api.kit.filters import entity_node
from memserver.api.kit.pagination import Paging, page_query
from memserver.api.kit.values import (
    AS_OF_DESCRIPTION,
    as_date,
    as_of_param,
    as_timestamp,
    memory_uuid,
    metadata_param,
)
from memserver.api.kit.wire import Message, wire
from memserver.api.memories.requests import (
    BatchRequest,
    UpdateRequest,
    batch_changes,
    batch_ids,
    delete_all_filters,
    delete_all_node,
    event_period,
)
from memserver.api.memories.responses import (
    EntityMemoryPage,
    HistoryEntry,
    HistoryPage,
    MemoriesDeleted,
    Memory,
    MemoryDeleted,
    event_period_out,
    history_out,
    memory_out,
)
from memserver.domain import binding
from memserver.domain.scope import TYPE_ALIASES, entity_type
from memserver.errors import BadRequest
from memserver.services import memories

router = APIRouter(tags=["memory"])


# -- static paths first: they must win over /v1/memories/{memory_id}/ ---------------------------
@router.get("/v1/memories/events", summary="History entries of the project, paginated", response_model=HistoryPage)
async def memory_events(
    request: Request,
    runtime: RuntimeDep,
    principal: ReaderDep,
    paging: Annotated[Paging, page_query(default_size=100, max_size=1000, size_name="limit")],
) -> Response:
    rows, total = await memories.history_page(runtime.db, principal, page=paging.page, limit=paging.size)
    return wire(paging.envelope(request, [history_out(r) for r in rows], total))


@router.put("/v1/batch", summary="Update up to 1000 memories, all or nothing", response_model=Message)
@router.put("/v1/memories/batch", include_in_schema=False, response_model=Message)
@error_shape("error")
@confines_bound_keys  # memories.batch_update: another entity's memory is not found
async def batch_update(body: BatchRequest, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    n = await memories.batch_update(runtime.db, runtime.providers, principal, batch_changes(body))
    return wire({"message": f"Successfully updated {n} memories"})


@router.delete("/v1/batch", summary="Delete up to 1000 memories, all or nothing (JSON body)", response_model=Message)
@router.delete("/v1/memories/batch", include_in_schema=False, response_model=Message)
@error_shape("error")
@confines_bound_keys  # memories.batch_delete: another entity's memory is not found
async def batch_delete(body: BatchRequest, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    n = await memories.batch_delete(runtime.db, principal, batch_ids(body))
    return wire({"message": f"Successfully deleted {n} memories"})


@router.delete(
    "/v1/memories",
    summary="Delete all memories of an entity ('*' = any), or matching `filters`",
    response_model=MemoriesDeleted,
)
@error_shape("error")
@confines_bound_keys
async def delete_all(
    request: Request,
    runtime: RuntimeDep,
    principal: OwnerDep,
    entity: EntityIdsQuery,
    metadata: str | None = None,
    filters: Annotated[
        str | None,
        Query(description="A filter object as JSON, or as the Python clients send it (`str(dict)`)."),
    ] = None,
) -> Response:
    ids = entity.ids()
    meta = metadata_param(metadata)
    given = delete_all_filters(filters, await json_object(request))
    node = binding.confine_filter(principal.binding, delete_all_node(ids, meta, given))
    assert node is not None
    n = await memories.delete_matching(runtime.db, principal, node)
    return wire({"message": "Memories deleted successfully!", "deleted_count": n})


# -- one memory --------------------------------------------------------------------------------
@router.get("/v1/memories/{memory_id}", summary="Get a memory", response_model=Memory)
@error_shape("error")
@confines_bound_keys  # memories.get: another entity's memory is not found
async def get_memory(
    memory_id: str,
    runtime: RuntimeDep,
    principal: ReaderDep,
    as_of: Annotated[str | None, Query(description=AS_OF_DESCRIPTION)] = None,
) -> Response:
    mid, at = memory_uuid(segment(memory_id)), as_of_param(as_of)
    row = await memories.get(runtime.db, principal, mid, as_of=at)
    return wire(memory_out(row, owner=principal.user_email))


@router.put(
    "/v1/memories/{memory_id}",
    summary="Update a memory's text, metadata, expiry or timestamp",
    response_model=Memory,
)
@error_shape("error")
@confines_bound_keys  # memories.update: another entity's memory is not found
async def update_memory(memory_id: str, body: UpdateRequest, runtime: RuntimeDep, principal: OwnerDep) -> Response:
    mid = memory_uuid(segment(memory_id))
    fields = body.model_fields_set
    text = body.text if body.text is not None else (body.data if body.data is not None else body.message)
    if text is not None and not text.strip():
        raise BadRequest("text must not be empty")
    change = memories.UpdateInput(text=text, created_at=as_timestamp(body.timestamp), event_period=event_period(body))
    if "metadata" in fields:
        change.metadata = body.metadata
    if "expiration_date" in fields:
        change.expiration_date = as_date(body.expiration_date)
    if text is None and not ({"metadata", "expiration_date", "event_period"} & fields) and body.timestamp is None:
        raise BadRequest("Nothing to update: send text, metadata, expiration_date, timestamp or event_period")
    row = await memories.update(runtime.db, runtime.providers, principal, mid, change)
    return wire(memory_out(row, owner=principal.user_email))


@router.delete("/v1/memories/{memory_id}", summary="Delete a memory", response_model=MemoryDeleted)
@error_shape("error")
@confines_bound_keys  # memories.delete: another entity's memory is not found
async def delete_memory(
    memory_id: str, runtime: RuntimeDep, principal: OwnerDep, delete_linked: bool = False
) -> Response:
    cascade = await memories.delete(runtime.db, principal, memory_uuid(segment(memory_id)), delete_linked=delete_linked)
    out: dict[str, Any] = {"message": "Memory deleted successfully!"}
    if delete_linked:
        out["cascade_count"] = cascade
    return wire(out)


@router.get(
    "/v1/memories/{first}/{second}",
    summary="History of a memory, or memories of an entity",
    response_model=list[HistoryEntry] | EntityMemoryPage,
)
@error_shape("error")
@confines_bound_keys  # memories.history; an entity's page is filtered
async def memory_subresource(
    first: str, second: str, request: Request, runtime: RuntimeDep, principal: ReaderDep, page: int = 1
) -> Response:
    """`/v1/memories/{memory_id}/history/` or `/v1/memories/{user|agent|app|run}/{entity_id}/`."""
    first, second = segment(first), segment(second)
    if second == "history" and first.lower() not in TYPE_ALIASES:
        entries = await memories.history(runtime.db, principal, memory_uuid(first))
        return wire([history_out(r) for r in entries])
    etype = entity_type(first)
    node = binding.confine_filter(principal.binding, entity_node({f"{etype}_id": second}))
    paging = Paging.checked(page, 100)
    rows, total = await memories.list_memories(
        runtime.db, principal, node, page=paging.page, page_size=paging.size, show_expired=True
    )
    results = [
        {
            "id": str(r.id),
            "memory": r.memory,
            "metadata": r.metadata,
            "categories": r.categories or [],
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "input": [],
            "is_updated": r.updated_at != r.created_at,
            "event_period": event_period_out(r),
        }
        for r in rows
    ]
    return wire(paging.envelope(request, results, total))
