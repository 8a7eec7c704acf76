"""Search hits: a memory with its score and the score's parts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from memserver.api.graph.responses import Relation
from memserver.api.kit.wire import Out
from memserver.api.memories.responses import Memory, memory_out
from memserver.domain.rows.memories import MemoryRow


class ScoreBreakdown(Out):
    semantic: float
    bm25: float
    entity: float
    temporal: float | None = Field(None, description="Hybrid retrieval only.")
    context: float | None = Field(None, description="Hybrid retrieval only.")
    rerank: float | None = Field(
        None,
        description="rerank=true with a reranker: the hit's relevance 0..1 (an LLM's is derived from its rank); "
        "hits are ordered by it, not by `score`.",
    )
    diversity: float | None = Field(
        None,
        description="rerank=true without a reranker (diversification): how much the hit was demoted for "
        "resembling a better hit (0 = not at all).",
    )


class SearchHit(Memory):
    score: float = Field(description="0..1, the hybrid score (threshold applies to it, also with rerank=true)")
    score_breakdown: ScoreBreakdown
    reranker: Literal["cohere", "voyage", "tei", "llm", "diversity", "none"] | None = Field(
        None,
        description="rerank=true only: what ordered the hits; 'none' when the reranker failed and the hits keep "
        "the hybrid order (see rerank_error).",
    )
    rerank_error: str | None = Field(
        None, description="rerank=true only: why the reranker failed (the search still answers, in hybrid order)."
    )
    score_reasons: dict[str, str] | None = Field(
        None,
        description="memserver extension, on queries that name a time: why `score_breakdown.temporal` is what it "
        'is ({"temporal": "event 2025-03-10..2025-03-16 (week) overlaps \\"last week\\" ...: 1.00"}).',
    )


class SearchResults(Out):
    """v3 search."""

    results: list[SearchHit]


class SearchResultsV11(SearchResults):
    """v1/v2 search with output_format=v1.1 or enable_graph (`relations`: those of the entities the query names)."""

    relations: list[Relation]


def search_hit_out(
    row: MemoryRow,
    score: float,
    breakdown: dict[str, float],
    *,
    owner: str | None = None,
    reranker: str | None = None,
    rerank_error: str | None = None,
    reasons: dict[str, str] | None = None,
) -> dict[str, Any]:
    out = memory_out(row, owner=owner)
    out["score"] = round(score, 6)
    out["score_breakdown"] = {k: round(v, 6) for k, v in breakdown.items()}
    if reranker is not None:  # rerank=true: both keys on every hit (clients keep unknown keys: py as is, TS camelCased)
        out["reranker"] = reranker
        out["rerank_error"] = rerank_error
    if reasons:  # the breakdown stays numbers (clients sum it); its explanation is a sibling
        out["score_reasons"] = reasons
    return out
