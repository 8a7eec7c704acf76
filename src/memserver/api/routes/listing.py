"""Listing and searching memories, per client generation (v1 GET, v2 POST, v3 POST)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError

from memserver.api.add_wire import add_input, v3_response
from memserver.api.deps import ReaderDep, RuntimeDep, confines_bound_keys, error_shape
from memserver.api.kit.entity_query import EntityIdsQuery
from memserver.api.kit.filters import (
    ENTITY_REQUIRED_SEARCH,
    ENTITY_REQUIRED_V1,
    TOP_LEVEL_IDS_V3,
    entity_node,
    filters_node,
    require_scope,
    shortcut_nodes,
)
from memserver.api.kit.pagination import PageQueryDep
from memserver.api.kit.scope import ERROR_SHAPE
from memserver.api.kit.values import metadata_param
from memserver.api.kit.wire import wire
from memserver.api.responses import (
    AddResponse,
    MemoriesWithRelations,
    Memory,
    MemoryPage,
    MemoryPageWithRelations,
    SearchHit,
    SearchResults,
    SearchResultsV11,
)
from memserver.api.schemas import AddRequest, ListRequest, SearchRequest
from memserver.api.serialize import memory_out, project_fields, search_hit_out
from memserver.domain import binding
from memserver.domain.filters import Node, and_all
from memserver.domain.principal import Principal
from memserver.domain.rows.memories import MemoryRow
from memserver.errors import BadRequest
from memserver.services import graph, ingest, memories, search

router = APIRouter(tags=["list and search"])


def _page_items(rows: Sequence[MemoryRow], principal: Principal, fields: list[str] | None) -> list[dict[str, Any]]:
    return [project_fields(memory_out(r, owner=principal.user_email), fields) for r in rows]


# ----------------------------------------------------------------------------------------------
# list
# ----------------------------------------------------------------------------------------------
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
    categories: Annotated[list[str] | None, Query()] = None,
    fields: Annotated[list[str] | None, Query()] = None,
    keywords: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: int | None = None,
    show_expired: bool = False,
) -> Response:
    """A bare array, or a {count, next, previous, results} page when both page and page_size are given."""
    ids = entity.ids()
    scope = require_scope(entity_node(ids), ENTITY_REQUIRED_V1)
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
        ),
    )
    node = binding.confine_filter(principal.binding, node)
    assert node is not None
    if query.complete:
        paging = query.checked()
        rows, total = await memories.list_memories(
            runtime.db, principal, node, page=paging.page, page_size=paging.size, show_expired=show_expired
        )
        return wire(paging.envelope(request, _page_items(rows, principal, fields), total))
    if limit is not None and limit > 200:
        raise BadRequest("limit must be <= 200")
    if limit is not None and limit < 1:  # a negative LIMIT is a database error
        raise BadRequest("limit must be >= 1")
    rows, _ = await memories.list_memories(
        runtime.db, principal, node, page=1, page_size=limit or 100, show_expired=show_expired
    )
    return wire(_page_items(rows, principal, fields))


def _list_node(body: ListRequest, principal: Principal, *, allow_top_level_ids: bool) -> Node:
    ids = body.ids()
    if ids and not allow_top_level_ids:
        raise BadRequest(TOP_LEVEL_IDS_V3)
    node = and_all(filters_node(body.filters), entity_node(ids))
    node = require_scope(node, ENTITY_REQUIRED_V1)
    extra = shortcut_nodes(
        categories=body.categories,
        keywords=body.keywords,
        start_date=body.start_date,
        end_date=body.end_date,
        latest_only=body.latest_only,
    )
    result = binding.confine_filter(principal.binding, and_all(node, extra))
    assert result is not None
    return result


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
    node = _list_node(body, principal, allow_top_level_ids=True)
    asked = query.over(body.page, body.page_size)
    paging = asked.checked()
    rows, total = await memories.list_memories(
        runtime.db, principal, node, page=paging.page, page_size=paging.size, show_expired=body.show_expired
    )
    items = _page_items(rows, principal, body.fields)
    listed = paging.envelope(request, items, total) if asked.complete else None
    if body.enable_graph:  # the v1/v2-era graph shape: top-level `relations` next to the memories
        limit = max(paging.size, 100)
        relations = _relations_out(await graph.current_relations(runtime.db, principal, node, limit=limit))
        return wire(
            {**listed, "relations": relations} if listed is not None else {"results": items, "relations": relations}
        )
    return wire(listed if listed is not None else items)


def _relations_out(records: list[Any], *, scored: bool = False) -> list[dict[str, Any]]:
    """Relations as v2 search/get_all list them: source, source_type, relationship, target, target_type
    (and `score` on search)."""
    out = []
    for r in records:
        item = r.triple.as_mem0()
        if scored:
            item["score"] = r.score
        out.append(item)
    return out


async def _add_body(request: Request) -> AddRequest:
    """Re-read the raw body as an add: ListRequest drops the add fields (infer, metadata, timestamp...)."""
    try:
        return AddRequest.model_validate(await request.json())
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()))
        raise BadRequest(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg"))) from None


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
    if body.messages is not None:  # 2.0.0b1 / ts-v3.0.0-beta.1 sent adds here
        request.scope[ERROR_SHAPE] = "add"
        add = await _add_body(request)
        result = await ingest.add(runtime.db, runtime.providers, runtime.queue, principal, add_input(add))
        return wire(v3_response(result, infer=add.infer))
    node = _list_node(body, principal, allow_top_level_ids=False)
    paging = query.over(body.page, body.page_size).checked()
    rows, total = await memories.list_memories(
        runtime.db, principal, node, page=paging.page, page_size=paging.size, show_expired=body.show_expired
    )
    return wire(paging.envelope(request, _page_items(rows, principal, body.fields), total))


# ----------------------------------------------------------------------------------------------
# search
# ----------------------------------------------------------------------------------------------
def _search_input(body: SearchRequest, principal: Principal, *, version: str) -> search.SearchInput:
    query = body.query.strip()
    if not query:
        raise BadRequest("query must not be empty")
    ids = body.ids()
    if version == "v3" and ids:
        raise BadRequest(TOP_LEVEL_IDS_V3)
    node = and_all(filters_node(body.filters), entity_node(ids))
    node = require_scope(node, ENTITY_REQUIRED_SEARCH)
    node = and_all(
        node,
        shortcut_nodes(categories=body.categories, metadata=body.metadata, latest_only=body.latest_only),
    )
    node = binding.confine_filter(principal.binding, node)
    assert node is not None
    top_k = body.top_k if body.top_k is not None else (body.limit if body.limit is not None else 10)
    if not 1 <= top_k <= 1000:
        raise BadRequest("top_k must be between 1 and 1000")
    default_threshold = {"v3": 0.1, "v2": 0.3}.get(version, 0.0)
    threshold = default_threshold if body.threshold is None else body.threshold
    if not 0.0 <= threshold <= 1.0:
        raise BadRequest("threshold must be between 0 and 1")
    retrieval = body.retrieval or "hybrid"
    if retrieval not in ("hybrid", "semantic", "keyword"):
        raise BadRequest("retrieval must be one of hybrid, semantic, keyword")
    return search.SearchInput(
        query=query,
        node=node,
        top_k=top_k,
        threshold=threshold,
        show_expired=body.show_expired,
        rerank=body.rerank,
        keyword_search=body.keyword_search,
        retrieval=retrieval,
    )


async def _run_search(
    runtime: RuntimeDep, principal: Principal, body: SearchRequest, version: str
) -> list[dict[str, Any]]:
    config = search.SearchConfig(
        exact_scan_limit=runtime.settings.search.exact_scan_limit,
        neighbour_gap_s=runtime.settings.search.neighbour_gap_s,
        graph_weight=runtime.settings.search.graph_weight,
        graph_hops=runtime.settings.search.graph_hops,
        graph_fanout=runtime.settings.search.graph_fanout,
    )
    hits = await search.search(
        runtime.db, runtime.providers, principal, _search_input(body, principal, version=version), config
    )
    return [
        project_fields(search_hit_out(h.row, h.score, h.breakdown, owner=principal.user_email), body.fields)
        for h in hits
    ]


async def _legacy_search(runtime: RuntimeDep, principal: Principal, body: SearchRequest, version: str) -> Response:
    """v1 and v2: a bare array, or {results, relations} with output_format=v1.1 or enable_graph."""
    results = await _run_search(runtime, principal, body, version)
    relations: list[dict[str, Any]] = []
    if body.enable_graph:
        records = await graph.search_relations(
            runtime.db,
            runtime.providers,
            principal,
            body.query.strip(),
            _search_input(body, principal, version=version).node,
            limit=runtime.settings.graph.search_relations,
        )
        relations = _relations_out(records, scored=True)
    if body.output_format == "v1.1" or body.enable_graph:
        return wire({"results": results, "relations": relations})
    return wire(results)


@router.post(
    "/v1/memories/search",
    summary="Search memories (v1, deprecated)",
    response_model=list[SearchHit] | SearchResultsV11,
)
@error_shape("message")
@confines_bound_keys
async def search_v1(body: SearchRequest, runtime: RuntimeDep, principal: ReaderDep) -> Response:
    return await _legacy_search(runtime, principal, body, "v1")


@router.post(
    "/v2/memories/search",
    summary="Search memories (v2, deprecated)",
    response_model=list[SearchHit] | SearchResultsV11,
)
@error_shape("message")
@confines_bound_keys
async def search_v2(body: SearchRequest, runtime: RuntimeDep, principal: ReaderDep) -> Response:
    return await _legacy_search(runtime, principal, body, "v2")


@router.post("/v3/memories/search", summary="Search memories (v3)", response_model=SearchResults)
@error_shape("error")
@confines_bound_keys
async def search_v3(body: SearchRequest, runtime: RuntimeDep, principal: ReaderDep) -> Response:
    """Hybrid search; every hit has a 0..1 `score` and its `score_breakdown`."""
    return wire({"results": await _run_search(runtime, principal, body, "v3")})
