"""Retrieval SQL: dense (pgvector) search, and the evidence hybrid ranking needs, within a scope.

Both read a scope of at most `exact_limit` memories (a user's, a run's) whole, through its B-tree
index: exact, and the fastest there is at that size. A larger scope walks the HNSW index (iterative
scans, so filters still fill the result), plus, for hybrid search, the full-text GIN index. One
statement decides which, from the scope's size counted up to the limit.

Hybrid scoring itself is `memserver.pipeline.ranking`: this module returns a few numbers per
memory (cosine similarity, which query terms it contains, names it mentions, its scope, order and
date), and then the rows of the winners.
"""

from __future__ import annotations

import functools
import typing
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pgvector import Vector
from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Text,
    and_,
    bindparam,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
    union,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSQUERY
from sqlalchemy.types import NullType

from memserver.domain.rows.memories import DenseHitRow, MemoryRow
from memserver.storage.db import VECTOR_PARAM
from memserver.storage.repositories.base import Repository
from memserver.storage.repositories.event_periods import EVENT_EVIDENCE, OVERLAPS
from memserver.storage.repositories.memories import READ_COLUMNS, M, not_expired
from memserver.storage.repositories.memory_states import StateView

MAX_TERMS = 8  # query terms scored by BM25: bits of the terms mask


class SearchRepository(Repository):
    def _conds(self, project_id: uuid.UUID, where: ColumnElement[bool] | None, show_expired: bool) -> list[Any]:
        conds: list[Any] = [M.c.project_id == project_id]
        if where is not None:
            conds.append(where)
        if not show_expired:
            conds.append(not_expired())
        return conds

    def _scope_size(self, conds: list[Any], cap: int) -> tuple[Any, ColumnElement[bool]]:
        """A one-row CTE with the scope's size, counted only up to cap + 1 (an index scan at most that
        long), and the condition "the scope is small enough to scan whole"."""
        capped = select(literal(1)).select_from(M).where(and_(true(), *conds)).limit(inline(cap + 1)).subquery()
        size = select(func.count().label("n")).select_from(capped).cte("scope_size").prefix_with("MATERIALIZED")
        return size, select(size.c.n).scalar_subquery() <= cap

    async def dense(
        self,
        project_id: uuid.UUID,
        where: ColumnElement[bool] | None,
        query_vector: NDArray[np.float32],
        *,
        limit: int,
        exact_limit: int,
        show_expired: bool = False,
        state: StateView | None = None,
    ) -> list[DenseHitRow]:
        """Nearest memories by cosine similarity.

        A scope of at most `exact_limit` memories (a user's, a run's) is scanned through its B-tree
        index and sorted: exact, and the fastest there is at that size. A larger scope walks the
        HNSW index (iterative scans, so filters still fill the result). One statement decides.
        `state`: the memories as they stood at a past moment (`as_of`, `memory_states`) instead.
        """
        q = bindparam("qvec", Vector(query_vector), type_=VECTOR_PARAM)
        distance = M.c.embedding.cosine_distance(q)
        conds = self._conds(project_id, where, show_expired)
        size, small = self._scope_size(conds, exact_limit)
        # "+ 0" hides the ORDER BY from the HNSW index, so the planner filters first.
        scan = (
            select(*READ_COLUMNS, distance.label("distance"))
            .where(and_(true(), *conds), small)
            .order_by(distance + 0)
            .limit(inline(limit))
        )
        ann = (
            select(*READ_COLUMNS, distance.label("distance"))
            .where(and_(true(), *conds), ~small)
            .order_by(distance)
            .limit(inline(limit))
        )
        if state is not None:  # as_of: today's nearest are the candidates among the memories unchanged since
            scan, ann = state.nearest(q, small, ann.with_only_columns(M.c.id), inline(limit))
        both = union_all(scan, ann).cte("nearest").prefix_with("MATERIALIZED")
        # relaxed_order iterative scans may return slightly out of order: sort the small result again.
        stmt = select(both, (1 - both.c.distance).label("similarity")).add_cte(size).order_by(both.c.distance)
        params = state.params if state is not None else {}
        return typing.cast(list[DenseHitRow], list((await self.conn.execute(stmt, params)).all()))

    async def hybrid_evidence(
        self,
        project_id: uuid.UUID,
        where: ColumnElement[bool] | None,
        query_vector: NDArray[np.float32],
        query_text: str,
        names: list[str],
        *,
        exact_limit: int,
        show_expired: bool = False,
        candidates: int = 200,
        per_term: int = 250,
        common: Sequence[str] = (),
        state: StateView | None = None,
        events: tuple[datetime, datetime] | None = None,
    ) -> tuple[list[uuid.UUID], list[list[Any]], int]:
        """What hybrid ranking needs to know about each memory (`memserver.pipeline.ranking`).

        A scope of at most `exact_limit` memories is read whole; a larger one reads the union of its
        HNSW nearest neighbours and its best full-text matches (`candidates` of each, the latter
        among at most `per_term` memories per query word). Returns the
        ids, the evidence as columns (seq, scope, created, cos, length, terms, names; each aligned
        with the ids), and the number of distinct stemmed terms in the query.

        `events` (a query that names a time: the hull of the times it names): the evidence also has each
        memory's event period (event_start, event_end: epoch seconds, NaN without one), and a large scope also
        proposes the `candidates` nearest of up to `per_term` memories whose period overlaps it (GiST index).
        A query naming no time runs the statement it always ran.

        `common`: stemmed words too frequent to propose full-text candidates in a large scope (they
        still count in the ranking). A word's GIN posting list is read whole (a bitmap cannot stop
        early), ~12 ms for a word in 65k memories, and the first `per_term` of them are no better
        candidates than any others.

        `state`: score the memories as they stood at a past moment (`as_of`, `memory_states`): the same
        evidence, read from their past texts and vectors.
        """
        conds = self._conds(project_id, where, show_expired)
        size, small = self._scope_size(conds, exact_limit)
        terms, ent = _query_terms(len(names))
        extra = EVENT_EVIDENCE if events is not None else ()
        columns = select(*_EVIDENCE, ent, *extra, M.c.id).select_from(M.join(terms, true()))
        by_vector = select(M.c.id).where(and_(true(), *conds), ~small).order_by(_DISTANCE)
        # Full-text candidates with bounded work: up to `per_term` memories containing each query word
        # (all of them for the rare, informative words), of which the `candidates` best by ts_rank_cd.
        # Ranking every memory that contains any query word would cost ~3 us per match: seconds for a
        # common word in a project of millions.
        words = func.generate_series(1, MAX_TERMS).table_valued("k").render_derived(name="words")
        per_word = (
            select(M.c.id)
            .where(
                and_(true(), *conds),
                ~small,
                ~literal_column("terms.l[words.k]").op("=")(func.any(bindparam("common", type_=_TEXT_ARRAY))),
                M.c.tsv.op("@@")(literal_column("terms.q[words.k]")),
            )
            .limit(inline(per_term))
            .lateral("per_word")
        )
        pool = select(per_word.c.id).select_from(words.join(terms, true()).join(per_word, true())).subquery()
        by_text = (
            select(M.c.id).where(M.c.id.in_(select(pool.c.id))).order_by(func.ts_rank_cd(M.c.tsv, _OR_QUERY).desc())
        )
        proposals = [by_vector.limit(inline(candidates)), by_text.limit(inline(candidates))]
        if events is not None:
            overlapping = (
                select(M.c.id).where(and_(true(), *conds), ~small, OVERLAPS).limit(inline(per_term)).subquery()
            )
            proposals.append(
                select(M.c.id).where(M.c.id.in_(select(overlapping.c.id))).order_by(_DISTANCE).limit(inline(candidates))
            )
        ids = union(*proposals).subquery()
        scored = union_all(
            columns.where(and_(true(), *conds), small),
            columns.where(M.c.id.in_(select(ids.c.id)), ~small),
        ).subquery("scored")
        if state is not None:  # as_of
            scored = state.scored(columns, small, select(ids.c.id))
        # One row of arrays, one per column: no per-memory row objects on the way to numpy.
        names_out = (*_EVIDENCE_COLUMNS, *(c.name for c in extra))
        stmt = select(
            *(func.array_agg(scored.c[c], type_=_PLAIN) for c in names_out),
            func.array_agg(scored.c.id, type_=_PLAIN),
            select(literal_column("coalesce(cardinality(terms.q), 0)")).select_from(terms).scalar_subquery(),
        ).add_cte(size, terms)
        params: dict[str, Any] = {"qvec": Vector(query_vector), "qtext": query_text, "common": list(common)}
        params.update({f"name_{i}": n for i, n in enumerate(names)})
        params.update(state.params if state is not None else {})
        if events is not None:
            params.update(event_from=events[0], event_to=events[1])
        row: Sequence[Any] = (await self.conn.execute(stmt, params)).one()  # arrays as asyncpg decodes them
        if row[-2] is None:  # nothing in scope
            return [], [[] for _ in names_out], 0
        return list(row[-2]), list(row[: len(names_out)]), int(row[-1])

    async def common_words(self, min_share: float) -> list[str]:
        """The stemmed words in at least `min_share` of all memories, from the planner's statistics of the
        full-text column (ANALYZE samples them; empty before the first ANALYZE)."""
        row = (
            await self.conn.execute(
                text(
                    "SELECT most_common_elems::text::text[] AS words, most_common_elem_freqs AS shares "
                    "FROM pg_stats WHERE tablename = 'memories' AND attname = 'tsv' "
                    "AND schemaname = current_schema()"
                )
            )
        ).first()
        if row is None or row.words is None:
            return []
        return [w for w, share in zip(row.words, row.shares, strict=False) if share >= min_share]

    async def rows(self, project_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, MemoryRow]:
        """The memories with these ids, as a search hit shows them."""
        if not ids:
            return {}
        result = await self.conn.execute(_ROWS_BY_ID, {"project_id": project_id, "ids": ids})
        return {r.id: typing.cast(MemoryRow, r) for r in result}


# Bit k-1 set when the memory's text contains the query's k-th term, bit k+7 when its metadata does
# (text lexemes carry weight A in the tsvector, metadata ones D). Most memories contain no query
# term at all: one test settles that.
_TERMS_MASK = " | ".join(
    f"CASE WHEN memories.tsv @@ terms.q[{k}] THEN"
    f" (CASE WHEN memories.tsv @@ terms.a[{k}] THEN {1 << (k - 1)} ELSE 0 END)"
    f" | (CASE WHEN memories.tsv @@ terms.d[{k}] THEN {1 << (k + 7)} ELSE 0 END) ELSE 0 END"
    for k in range(1, MAX_TERMS + 1)
)


# The parts of the evidence statement that never change, built once (bound values come at execution).
_QVEC = bindparam("qvec", type_=VECTOR_PARAM)
_DISTANCE = M.c.embedding.cosine_distance(_QVEC)
# in Evidence.from_columns' order, then the names share ('ent', per query)
_EVIDENCE: tuple[ColumnElement[Any], ...] = (
    M.c.seq,
    func.hashtextextended(  # one bigint per exact scope (user, agent, app, run): neighbours never cross scopes
        func.concat_ws(
            literal_column("chr(31)"),
            func.coalesce(M.c.user_id, ""),
            func.coalesce(M.c.agent_id, ""),
            func.coalesce(M.c.app_id, ""),
            func.coalesce(M.c.run_id, ""),
        ),
        0,
    ).label("skey"),
    cast(func.extract("epoch", M.c.created_at), Float).label("created"),
    (1 - _DISTANCE).label("cos"),
    func.length(M.c.tsv).label("dl"),
    literal_column(_TERMS_MASK).label("terms_mask"),
)


def inline(n: int) -> Any:
    """A LIMIT written into the SQL text, not sent as a parameter.

    Search statements run as prepared statements with generic plans (planned once, `Database.connect(
    generic_plans=True)`), and a generic plan cannot see a parameter's value: it assumed the candidate
    union could be 100k rows and hash-joined it against a sequential scan of the whole table, 640 ms per
    project-wide hybrid search at 1M memories against 140 ms with the limits visible (bench.scale). The
    values are a handful of fixed settings, so the statement cache stays small.
    """
    return bindparam(None, n, type_=Integer, literal_execute=True)


_ROWS_BY_ID = select(*READ_COLUMNS).where(
    M.c.project_id == bindparam("project_id"), M.c.id == func.any(bindparam("ids"))
)  # built once: the winners' rows
_EVIDENCE_COLUMNS = (*(c.name for c in _EVIDENCE), "ent")
_TEXT_ARRAY = ARRAY(Text)
_PLAIN = NullType()  # arrays come back as asyncpg decodes them, with no per-element processing
_OR_QUERY = cast(  # any of the query's words
    func.replace(cast(func.plainto_tsquery("english", bindparam("qtext", type_=Text)), Text), " & ", " | "),
    TSQUERY,
)


@functools.cache
def _query_terms(names: int) -> tuple[Any, Any]:
    """The one-row `terms` CTE for a query with this many names, and the evidence column it feeds.

    terms.q, a, d: the query's distinct stemmed words, each as a one-word tsquery matching it
    anywhere, in the memory's text only, in its metadata only (the terms mask);
    terms.n: each name (bound as name_0, name_1, ...) as a tsquery. A memory mentions a name when
    its tsvector contains it: a whole word, in any case, possessive or not ("Caroline's").
    """
    name_queries = (
        "ARRAY[" + ", ".join(f"plainto_tsquery('english', :name_{i})" for i in range(names)) + "]"
        if names
        else "CAST(NULL AS tsquery[])"
    )
    cte = (
        text(
            "SELECT w.q, w.a, w.d, w.l, "
            f"{name_queries} AS n FROM (SELECT array_agg(CAST(quote_literal(lexeme) AS tsquery)) AS q, "
            "array_agg(lexeme) AS l, "
            "array_agg(CAST(quote_literal(lexeme) || '\\:A' AS tsquery)) AS a, "
            "array_agg(CAST(quote_literal(lexeme) || '\\:D' AS tsquery)) AS d "
            f"FROM (SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', :qtext)) LIMIT {MAX_TERMS}) AS t) AS w"
        )
        .bindparams(*(bindparam(f"name_{i}", type_=Text) for i in range(names)))
        .columns(column("q"), column("a"), column("d"), column("l"), column("n"))
        .cte("terms")
        .prefix_with("MATERIALIZED")
    )
    if not names:
        return cte, literal(0.0, Float).label("ent")
    mentioned = " + ".join(f"coalesce((memories.tsv @@ terms.n[{i + 1}])::int, 0)" for i in range(names))
    return cte, literal_column(f"({mentioned})::float8 / {names}").label("ent")
