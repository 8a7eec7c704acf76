"""The search request of every generation, and its parsing into the use case's `SearchInput`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, WithJsonSchema, field_validator

from memserver.api.kit.filters import (
    ENTITY_REQUIRED_SEARCH,
    TOP_LEVEL_IDS_V3,
    entity_node,
    filters_node,
    require_scope,
    shortcut_nodes,
)
from memserver.api.kit.schema import EntityIds, check_metadata
from memserver.api.kit.values import AS_OF_DESCRIPTION, AS_OF_SCHEMA, as_of_param
from memserver.domain import binding, limits
from memserver.domain.dates import parse_reference, parse_zone
from memserver.domain.filters import and_all
from memserver.domain.principal import Principal
from memserver.errors import BadRequest
from memserver.services import search


class SearchRequest(EntityIds):
    """POST /v1|v2|v3/memories/search/."""

    query: str = Field(..., description="The search text.")
    filters: dict[str, Any] | None = None
    top_k: int | None = Field(None, description="Results to return (1-1000; default 10).")
    limit: int | None = Field(None, description="Alias of top_k.")
    threshold: float | None = Field(None, description="Minimum score 0..1 (v3 default 0.1, v2 0.3, v1 none).")
    rerank: bool = Field(
        False,
        description="Order the best hits by the configured reranker's relevance (MEMSERVER_RERANK__PROVIDER: a "
        "/rerank server or the LLM); without one, diversify them. Each hit then says what ordered it (`reranker`).",
    )
    keyword_search: bool = False
    show_expired: bool = False
    fields: list[str] | None = None
    categories: list[str] | None = None
    metadata: dict[str, Any] | None = None
    output_format: str | None = None
    latest_only: bool = False
    include_merged: bool = Field(
        False, description="Accepted; memserver never merges records (duplicates are NOOP at add time)."
    )
    retrieval: str | None = Field(
        None, description="memserver extension: 'hybrid' (default), 'semantic' (dense only) or 'keyword'."
    )
    enable_graph: bool = Field(
        False, description="v1/v2: also return `relations` of the entities the query names (ignored on v3)."
    )
    as_of: Annotated[Any, WithJsonSchema(AS_OF_SCHEMA)] = Field(None, description=AS_OF_DESCRIPTION)
    reference_date: Any = Field(
        None,
        description='"Now" for the times the query names ("last week"): unix seconds (or milliseconds), YYYY-MM-DD '
        "(the end of that day) or an ISO-8601 datetime. Absent: the server's clock.",
        json_schema_extra={"anyOf": [{"type": "integer"}, {"type": "number"}, {"type": "string"}, {"type": "null"}]},
    )
    timezone: Any = Field(
        None,
        description='memserver extension: the IANA time zone whose days the query means ("Europe/Paris"). Absent: '
        "the offset of reference_date, else UTC.",
        json_schema_extra={"anyOf": [{"type": "string"}, {"type": "null"}]},
    )

    @field_validator("query", mode="after")
    @classmethod
    def _bounded_query(cls, v: str) -> str:
        n = limits.current().max_query_chars
        if len(v) > n:
            raise ValueError(f"query is longer than {n} characters (MEMSERVER_LIMITS__MAX_QUERY_CHARS)")
        return v

    @field_validator("metadata", mode="after")
    @classmethod
    def _bounded_metadata(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_metadata(v)


def search_input(body: SearchRequest, principal: Principal, *, version: str) -> search.SearchInput:
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
    try:
        zone = parse_zone(body.timezone)
        reference = parse_reference(body.reference_date, zone) if body.reference_date is not None else None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return search.SearchInput(
        query=query,
        node=node,
        top_k=top_k,
        threshold=threshold,
        show_expired=body.show_expired,
        rerank=body.rerank,
        keyword_search=body.keyword_search,
        retrieval=retrieval,
        as_of=as_of_param(body.as_of),
        reference=reference,
        zone=zone,
    )
