"""Search hits: a memory with its score and the score's parts."""

from __future__ import annotations

from typing import Any

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


class SearchHit(Memory):
    score: float = Field(description="0..1")
    score_breakdown: ScoreBreakdown
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
    reasons: dict[str, str] | None = None,
) -> dict[str, Any]:
    out = memory_out(row, owner=owner)
    out["score"] = round(score, 6)
    out["score_breakdown"] = {k: round(v, 6) for k, v in breakdown.items()}
    if reasons:  # the breakdown stays numbers (clients sum it); its explanation is a sibling
        out["score_reasons"] = reasons
    return out
