"""Searching memories, per client generation (v1, v2, v3)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from memserver.api.deps import ReaderDep, RuntimeDep, confines_bound_keys, error_shape
from memserver.api.graph.responses import relations_out
from memserver.api.kit.wire import wire
from memserver.api.memories.responses import project_fields
from memserver.api.search.requests import SearchRequest, search_input
from memserver.api.search.responses import SearchHit, SearchResults, SearchResultsV11, search_hit_out
from memserver.domain.principal import Principal
from memserver.services import graph, rerank, search
from memserver.services.runtime import Runtime

router = APIRouter(tags=["list and search"])


async def _run_search(
    runtime: Runtime, principal: Principal, body: SearchRequest, version: str
) -> list[dict[str, Any]]:
    config = search.SearchConfig(
        exact_scan_limit=runtime.settings.search.exact_scan_limit,
        neighbour_gap_s=runtime.settings.search.neighbour_gap_s,
        graph_weight=runtime.settings.search.graph_weight,
        graph_hops=runtime.settings.search.graph_hops,
        graph_fanout=runtime.settings.search.graph_fanout,
        rerank=rerank.RerankConfig.of(runtime.settings.rerank),
    )
    hits = await search.search(
        runtime.db,
        runtime.providers,
        principal,
        search_input(body, principal, version=version),
        config,
        meter=runtime.usage,
    )
    return [
        project_fields(
            search_hit_out(
                h.row,
                h.score,
                h.breakdown,
                owner=principal.user_email,
                reranker=h.reranker,
                rerank_error=h.rerank_error,
                reasons=h.reasons,
            ),
            body.fields,
        )
        for h in hits
    ]


async def _legacy_search(runtime: Runtime, principal: Principal, body: SearchRequest, version: str) -> Response:
    """v1 and v2: a bare array, or {results, relations} with output_format=v1.1 or enable_graph."""
    results = await _run_search(runtime, principal, body, version)
    relations: list[dict[str, Any]] = []
    if body.enable_graph:
        records = await graph.search_relations(
            runtime.db,
            runtime.providers,
            principal,
            body.query.strip(),
            search_input(body, principal, version=version).node,
            limit=runtime.settings.graph.search_relations,
        )
        relations = relations_out(records, scored=True)
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
