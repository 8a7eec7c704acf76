"""Search use case: embed the query, retrieve candidates in the scope, score on a fixed 0..1 scale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memserver.providers.registry import Providers
from memserver.storage.db import Database
from memserver.storage.filters import Node, compile_filter, narrow_entity
from memserver.storage.repositories.search import SearchRepository
from memserver.types import Principal


@dataclass
class SearchInput:
    query: str
    node: Node
    top_k: int = 10
    threshold: float = 0.0
    show_expired: bool = False
    rerank: bool = False
    keyword_search: bool = False
    retrieval: str = "hybrid"  # hybrid | semantic | keyword


@dataclass
class Hit:
    row: Any
    score: float
    breakdown: dict[str, float] = field(default_factory=dict)


async def search(db: Database, providers: Providers, principal: Principal, req: SearchInput) -> list[Hit]:
    vector = (await providers.embedder.embed([req.query]))[0]
    where = compile_filter(req.node)
    async with db.connect() as conn:
        rows = await SearchRepository(conn).dense(
            principal.project_id, where, vector, limit=req.top_k, exact=narrow_entity(req.node),
            show_expired=req.show_expired,
        )
    hits = []
    for r in rows:
        score = max(0.0, min(1.0, float(r.similarity)))
        if score < req.threshold or score <= 0.0 and req.threshold > 0:
            continue
        hits.append(Hit(row=r, score=score, breakdown={"semantic": score, "bm25": 0.0, "entity": 0.0}))
    return hits
