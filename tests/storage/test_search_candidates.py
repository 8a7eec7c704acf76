"""Full-text candidates of a large scope come from informative words only (SearchRepository.hybrid_evidence).

In a scope larger than the exact-scan limit, hybrid search takes candidates from the HNSW index and from
each query word's full-text matches. A word found in a large share of all memories (the planner's
statistics) proposes none: its posting list is read whole, and the few matches taken are arbitrary.
"""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
from sqlalchemy import text

from memserver.domain.changes import AddDefaults, ChangeSet, NewMemory
from memserver.domain.filters import Cond
from memserver.domain.scope import Scope
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.pipeline.messages import text_hash
from memserver.storage.db import Database
from memserver.storage.filters import compile_filter
from memserver.storage.repositories.memory_writes import MemoryWriter
from memserver.storage.repositories.search import SearchRepository
from tests.worker.jobs_harness import fresh_database, make_tenant

RNG = np.random.default_rng(7)


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_a_common_word_proposes_no_full_text_candidates_in_a_large_scope(pg: EmbeddedPostgres) -> None:
    url = fresh_database(pg, "common_words")
    project = uuid.UUID(make_tenant(url)[0])
    query_vector = unit(RNG.standard_normal(384))

    async def scenario() -> None:
        db = Database(url)
        try:
            changes = ChangeSet()
            # the memory nearest to the query vector does not contain the query word ...
            texts = [("Zebra crossing near the station", query_vector)]
            # ... 39 memories far from it do (a word in 39 of 40 memories)
            texts += [(f"Routine note number {i}", unit(RNG.standard_normal(384))) for i in range(39)]
            for i, (t, v) in enumerate(texts):
                changes.adds.append(
                    NewMemory(text=t, hash=text_hash(t), scope=Scope(user_id=f"u{i}"), embedding=v, index=i)
                )
            async with db.transaction() as conn:
                await MemoryWriter(conn).apply(project, changes, AddDefaults(), event_id=uuid.uuid4())
            async with db.connect() as conn:
                await conn.execute(text("ANALYZE memories"))
            async with db.connect() as conn:
                repo = SearchRepository(conn)
                common = await repo.common_words(0.5)
                assert "routin" in common  # stemmed, as the full-text column stores it
                assert "zebra" not in common

                async def candidates(skip: list[str]) -> set[uuid.UUID]:
                    ids, _, _ = await repo.hybrid_evidence(
                        project,
                        compile_filter(Cond("user_id", "any", None)),
                        query_vector,
                        "routine",
                        [],
                        exact_limit=5,  # 40 memories: a large scope
                        candidates=1,
                        per_term=5,
                        common=skip,
                    )
                    return set(ids)

                with_text = await candidates([])
                without = await candidates(common)
            assert len(with_text) == 2  # the nearest memory, and one full-text match of "routine"
            assert len(without) == 1  # the nearest memory only: "routine" is in 39 of 40 memories
            assert without < with_text
        finally:
            await db.dispose()

    asyncio.run(scenario())
