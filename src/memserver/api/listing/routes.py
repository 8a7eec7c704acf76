"""Listing memories, per client generation (v1 GET, v2 POST, v3 POST)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from memserver.api.add.requests import pre_release_add
from memserver.api.add.responses import AddResponse, v3_response
from memserver.api.deps import ReaderDep, RuntimeDep, confines_bound_keys, error_shape
from memserver.api.graph.responses import relations_out
from memserver.api.kit.entity_query import EntityIdsQuery
from memserver.api.kit.filters import ENTITY_REQUIRED_V1, entity_node, filters_node, require_scope, shortcut_nodes
from memserver.api.kit.pagination import PageQueryDep
from memserver.api.kit.scope import ERROR_SHAPE
from memserver.api.kit.values import AS_OF_DESCRIPTION, as_of_param, decode_object_param, metadata_param
from memserver.api.kit.wire import wire
from memserver.api.listing.requests import ListRequest, list_node
from memserver.api.listing.responses import MemoriesWithRelations, MemoryPageWithRelations, page_items
from memserver.api.memories.responses import Memory, MemoryPage
from memserver.domain import binding
from memserver.domain.filters import and_all
from memserver.errors import BadRequest
from memserver.services import graph, ingest, memories

router = APIRouter(tags=["list and search"])


@router.get("/v1/memories", summary="List memories (v1, deprecated)", response_model=list[Memory] | MemoryPage)
@error_shape("message")
@confines_bound_keys
async def list_v1(
    request: Request,
    runtime: RuntimeDep,
    principal: ReaderDep,
    entity: EntityIdsQuery,
    query: PageQueryDep,
    metadata: str | None = None,
    filters: Annotated[
        str | None,
        Query(description="A filter object as JSON, or as the Python clients send it (`str(dict)`)."),
    ] = None,
    categories: Annotated[list[str] | None, Query()] = None,
    fields: Annotated[list[str] | None, Query()] = None,
    keywords: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: int | None = None,
    show_expired: bool = False,
    latest_only: Annotated[bool, Query(description="Only current memories: superseded ones left out.")] = False,
    include_merged: Annotated[
        bool, Query(description="Accepted; memserver never merges records (duplicates are NOOP at add time).")
    ] = False,
    as_of: Annotated[str | None, Query(description=AS_OF_DESCRIPTION)] = None,
) -> Response:
    """A bare array, or a {count, next, previous, results} page when both page and page_size are given."""
    at = as_of_param(as_of)
    ids = entity.ids()
    given = filters_node(decode_object_param(filters, "filters"))  # 0.1.x get_all(filters=...) sends str(dict)
    scope = require_scope(and_all(entity_node(ids), given), ENTITY_REQUIRED_V1)
    meta = metadata_param(metadata)
    cats: list[str] | None = None
    if categories:
        cats = [c.strip() for item in categories for c in item.split(",") if c.strip()]
    node = and_all(
        scope,
        shortcut_nodes(
            categories=cats,
            metadata=meta,
            keywords=keywords,
            start_date=start_date,
            end_date=end_date,
            latest_only=latest_only,
        ),
    )
    node = binding.confine_filter(principal.binding, node)
    assert node is not None
    if query.complete:
        paging = query.checked()
        rows, total = await memories.list_memories(
            runtime.db, principal, node, page=paging.page, page_size=paging.size, show_expired=show_expired, as_of=at
        )
        return wire(paging.envelope(request, page_items(rows, principal, fields), total))
    if limit is not None and limit > 200:
        raise BadRequest("limit must be <= 200")
    if limit is not None and limit < 1:  # a negative LIMIT is a database error
        raise BadRequest("limit must be >= 1")
    rows, _ = await memories.list_memories(
        runtime.db, principal, node, page=1, page_size=limit or 100, show_expired=show_expired, as_of=at
    )
    return wire(page_items(rows, principal, fields))


@router.post(
    "/v2/memories",
    summary="List memories (v2, deprecated)",
    response_model=list[Memory] | MemoryPage | MemoriesWithRelations | MemoryPageWithRelations,
)
@error_shape("message")
@confines_bound_keys
async def list_v2(
    request: Request,
    body: ListRequest,
    runtime: RuntimeDep,
    principal: ReaderDep,
    query: PageQueryDep,
) -> Response:
    """`filters` or top-level ids; a bare array, or a page when page and page_size are given."""
    node = list_node(body, principal, allow_top_level_ids=True)
    at = as_of_param(body.as_of)
    asked = query.over(body.page, body.page_size)
    paging = asked.checked()
    rows, total = await memories.list_memories(
        runtime.db, principal, node, page=paging.page, page_size=paging.size, show_expired=body.show_expired, as_of=at
    )
    items = page_items(rows, principal, body.fields)
    listed = paging.envelope(request, items, total) if asked.complete else None
    if body.enable_graph:  # the v1/v2-era graph shape: top-level `relations` next to the memories
        limit = max(paging.size, 100)
        relations = relations_out(await graph.current_relations(runtime.db, principal, node, limit=limit))
        return wire(
            {**listed, "relations": relations} if listed is not None else {"results": items, "relations": relations}
        )
    return wire(listed if listed is not None else items)


@router.post(
    "/v3/memories",
    summary="List memories (v3)",
    response_model=MemoryPage | AddResponse,
    description="A page of memories. Pre-release clients (2.0.0b1, ts-v3.0.0-beta.1) sent adds here "
    "(a body with `messages`): those are answered as POST /v3/memories/add/.",
)
@error_shape("error")
@confines_bound_keys
async def list_v3(
    request: Request,
    body: ListRequest,
    runtime: RuntimeDep,
    principal: ReaderDep,
    query: PageQueryDep,
) -> Response:
    """Always a {count, next, previous, results} page; the query's page/page_size win over the body's."""
    if body.messages is not None:  # 2.0.0b1 / ts-v3.0.0-beta.1 sent adds here: answered as POST /v3/memories/add/
        request.scope[ERROR_SHAPE] = "add"
        inp = await pre_release_add(request)
        result = await ingest.add(runtime.db, runtime.providers, runtime.queue, principal, inp)
        return wire(v3_response(result, infer=inp.infer))
    node = list_node(body, principal, allow_top_level_ids=False)
    at = as_of_param(body.as_of)
    paging = query.over(body.page, body.page_size).checked()
    rows, total = await memories.list_memories(
        runtime.db, principal, node, page=paging.page, page_size=paging.size, show_expired=body.show_expired, as_of=at
    )
    return wire(paging.envelope(request, page_items(rows, principal, body.fields), total))
