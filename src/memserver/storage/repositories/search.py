"""Retrieval SQL: dense (pgvector) and hybrid (pgvector + BM25 + context) search within a scope.

Hybrid scoring happens in one statement. For every memory in the scope (or, for scopes too large
to scan, for the union of the HNSW and full-text candidates):

* semantic: cosine similarity to the query, and the same averaged with the memory's
  conversational neighbours (the memories added just before and after it in the same scope,
  weighted 1/2);
* keyword: BM25 (k1=1.2, b=0.75, Postgres' english stemming and stop words, binary term
  frequency) over the memory, and BM25F over its neighbourhood (two memories each side, the
  outer ones weighted 1/2), each divided by the query's total IDF: the share of the query that
  the memory matches, in [0, 1];
* entity: the share of the names in the query that the memory mentions;
* time: whether the memory was recorded in a period the query names.

total = the weighted sum (weights in `Weights`) + 0.2 x the best neighbour's sum, and the
reported score is tanh(total): a fixed 0..1 scale whatever the query or the collection. A purely
semantic match scores about its cosine similarity; keyword, name, date and context evidence add.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pgvector import Vector
from sqlalchemy import (
    ColumnElement,
    Float,
    Text,
    and_,
    bindparam,
    case,
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
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import UserDefinedType

from memserver.storage.repositories.memories import READ_COLUMNS, M, not_expired

_OR_QUERY = "CAST(replace(CAST(plainto_tsquery('english', :qtext) AS text), ' & ', ' | ') AS tsquery)"


class _VectorParam(UserDefinedType[Any]):
    """A pgvector parameter passed through untouched: the connection's binary codec encodes it."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "vector"


_VECTOR_PARAM = _VectorParam()


@dataclass(frozen=True)
class Weights:
    """Weights of the hybrid score (see the module docstring)."""

    dense: float = 0.5
    dense_context: float = 0.5
    bm25: float = 0.5
    bm25_context: float = 0.5
    entity: float = 0.2
    time: float = 0.2
    neighbour: float = 0.2
    k1: float = 1.2
    b: float = 0.75


HYBRID = Weights()
KEYWORD_ONLY = Weights(dense=0, dense_context=0, entity=0, time=0, neighbour=0)


@dataclass
class Hints:
    names: list[str]
    period_starts: list[datetime]
    period_ends: list[datetime]
    months: list[int]


class SearchRepository:
    def __init__(self, conn: AsyncConnection):
        self.conn = conn

    def _conds(self, project_id: uuid.UUID, where: ColumnElement[bool] | None, show_expired: bool) -> list[Any]:
        conds: list[Any] = [M.c.project_id == project_id]
        if where is not None:
            conds.append(where)
        if not show_expired:
            conds.append(not_expired())
        return conds

    def _scope_size(self, conds: list[Any], cap: int) -> Any:
        """A one-row CTE: the scope's size, counted only up to cap + 1 (an index scan at most that long)."""
        capped = select(literal(1)).select_from(M).where(and_(true(), *conds)).limit(cap + 1).subquery()
        return select(func.count().label("n")).select_from(capped).cte("scope_size").prefix_with("MATERIALIZED")

    async def dense(
        self,
        project_id: uuid.UUID,
        where: ColumnElement[bool] | None,
        query_vector: NDArray[np.float32],
        *,
        limit: int,
        exact_limit: int,
        show_expired: bool = False,
    ) -> list[Any]:
        """Nearest memories by cosine similarity.

        A scope of at most `exact_limit` memories (a user's, a run's) is scanned through its B-tree
        index and sorted: exact, and the fastest there is at that size. A larger scope walks the
        HNSW index (iterative scans, so filters still fill the result). One statement decides.
        """
        q = bindparam("qvec", Vector(query_vector), type_=_VECTOR_PARAM)
        distance = M.c.embedding.cosine_distance(q)
        conds = self._conds(project_id, where, show_expired)
        size = self._scope_size(conds, exact_limit)
        small = select(size.c.n).scalar_subquery() <= exact_limit
        # "+ 0" hides the ORDER BY from the HNSW index, so the planner filters first.
        scan = (
            select(*READ_COLUMNS, distance.label("distance"))
            .where(and_(true(), *conds), small)
            .order_by(distance + 0)
            .limit(limit)
        )
        ann = (
            select(*READ_COLUMNS, distance.label("distance"))
            .where(and_(true(), *conds), ~small)
            .order_by(distance)
            .limit(limit)
        )
        both = union_all(scan, ann).cte("nearest").prefix_with("MATERIALIZED")
        # relaxed_order iterative scans may return slightly out of order: sort the small result again.
        stmt = select(both, (1 - both.c.distance).label("similarity")).add_cte(size).order_by(both.c.distance)
        return list((await self.conn.execute(stmt)).all())

    async def hybrid(
        self,
        project_id: uuid.UUID,
        where: ColumnElement[bool] | None,
        query_vector: NDArray[np.float32],
        query_text: str,
        hints: Hints,
        *,
        limit: int,
        exact_limit: int,
        weights: Weights = HYBRID,
        show_expired: bool = False,
        gap_s: float = 3600.0,
        candidates: int = 200,
    ) -> list[Any]:
        """Hybrid search (module docstring).

        A scope of at most `exact_limit` memories is scored whole; a larger one scores the union of
        its HNSW nearest neighbours and its best full-text matches (`candidates` of each).
        """
        q = bindparam("qvec", Vector(query_vector), type_=_VECTOR_PARAM)
        conds = self._conds(project_id, where, show_expired)
        size = self._scope_size(conds, exact_limit)
        small = select(size.c.n).scalar_subquery() <= exact_limit
        # One bigint per exact scope (user, agent, app, run): neighbours never cross scopes.
        skey = func.hashtextextended(
            func.concat_ws(
                literal_column("chr(31)"),
                func.coalesce(M.c.user_id, ""),
                func.coalesce(M.c.agent_id, ""),
                func.coalesce(M.c.app_id, ""),
                func.coalesce(M.c.run_id, ""),
            ),
            0,
        )
        columns = select(
            M.c.id,
            M.c.seq,
            M.c.created_at,
            (1 - M.c.embedding.cosine_distance(q)).label("cos"),
            skey.label("skey"),
            func.length(M.c.tsv).label("dl"),
            literal_column(_TERMS_MASK).label("terms_mask"),
            _names_matched().label("ent"),
        ).select_from(M.join(_TERMS_CTE, true()))
        or_query = cast(
            func.replace(cast(func.plainto_tsquery("english", bindparam("qtext")), Text), " & ", " | "),
            TSQUERY,
        )
        by_vector = select(M.c.id).where(and_(true(), *conds), ~small).order_by(M.c.embedding.cosine_distance(q))
        by_text = (
            select(M.c.id)
            .where(and_(true(), *conds), ~small, M.c.tsv.op("@@")(or_query))
            .order_by(func.ts_rank_cd(M.c.tsv, or_query).desc())
        )
        ids = union(by_vector.limit(candidates), by_text.limit(candidates)).subquery()
        scope = union_all(
            columns.where(and_(true(), *conds), small),
            columns.where(M.c.id.in_(select(ids.c.id)), ~small),
        )
        s = scope.cte("s").prefix_with("MATERIALIZED")
        ctes = [size, _TERMS_CTE, s, *_HYBRID_CTE_OBJECTS]
        ranked = ctes[-1]
        top = select(*(ranked.c[c] for c in ("id", *_SIGNALS))).order_by(ranked.c.total.desc()).limit(limit).cte("top")
        stmt = (
            select(*READ_COLUMNS, *(top.c[c] for c in _SIGNALS))
            .select_from(top.join(M, M.c.id == top.c.id))
            .add_cte(*ctes, top)
            .order_by(top.c.total.desc(), M.c.seq.desc())
            .params(
                qtext=query_text,
                gap=timedelta(seconds=gap_s),
                names=hints.names,
                p_start=hints.period_starts,
                p_end=hints.period_ends,
                months=hints.months,
                k1=weights.k1,
                b=weights.b,
                w_d1=weights.dense,
                w_d2=weights.dense_context,
                w_b1=weights.bm25,
                w_b2=weights.bm25_context,
                w_e=weights.entity,
                w_t=weights.time,
                w_n=weights.neighbour,
            )
        )
        return list((await self.conn.execute(stmt)).all())


def _cte(name: str, sql: str, cols: tuple[str, ...]) -> Any:
    # Every stage is computed exactly once. Inlined, a one-row stage (terms, st) can end up as the
    # inner side of a nested loop and be recomputed per memory when the scope's size is
    # underestimated (fresh statistics), which turns milliseconds into hundreds of them.
    return text(sql).columns(*(column(c) for c in cols)).cte(name).prefix_with("MATERIALIZED")


_SIGNALS = ("total", "semantic", "keyword", "entity", "temporal", "context")
MAX_TERMS = 8  # query terms scored by BM25 (distinct stemmed words; queries are short)


def _hybrid_ctes() -> list[tuple[str, str, tuple[str, ...]]]:
    """The scoring CTEs, as (name, SQL, columns). They read the materialised scope `s`.

    Written without joins between derived sets: conversational neighbours are adjacent rows of one
    window ordering, and the query's terms are a fixed set of columns, so the plan is two sorts of
    the scope whatever the planner's row estimates are. Term frequencies are binary (does the
    memory contain the term): memories are short, and it saves unpacking every tsvector.
    """
    ks = range(1, MAX_TERMS + 1)

    def lagged(c: str) -> str:
        """The column's value at the neighbours (one and two steps before and after)."""
        return (
            f"lag({c}) OVER w AS p1_{c}, lead({c}) OVER w AS n1_{c}, "
            f"lag({c}, 2) OVER w AS p2_{c}, lead({c}, 2) OVER w AS n2_{c}"
        )

    def around(c: str, bit: int | None = None) -> str:
        """The column summed over the neighbourhood: itself, both neighbours, half of the second ones.

        With `bit`, the column is the term bitmask and the sum is over that term's bit.
        """

        def v(name: str) -> str:
            return name if bit is None else f"(({name} >> {bit}) & 1)"

        return (
            f"({v(c)} + CASE WHEN vp1 THEN {v('p1_' + c)} ELSE 0 END + CASE WHEN vn1 THEN {v('n1_' + c)} ELSE 0 END"
            f" + 0.5::float8 * CASE WHEN vp2 THEN {v('p2_' + c)} ELSE 0 END"
            f" + 0.5::float8 * CASE WHEN vn2 THEN {v('n2_' + c)} ELSE 0 END)::float8"
        )

    def bm(tf: str, length: str, avg: str) -> str:
        return " + ".join(
            f"st.idf{k} * {tf}{k} * (:k1 + 1) / ({tf}{k} + :k1 * (1 - :b + :b * {length} / {avg}))" for k in ks
        )

    return [
        (
            "o",  # per memory, and summed over its conversational neighbourhood
            f"""
            SELECT id, seq, skey, created_at, ent, cos, vp1, vn1,
                (cos + 0.5::float8 * CASE WHEN vp1 THEN pcos ELSE 0 END
                     + 0.5::float8 * CASE WHEN vn1 THEN ncos ELSE 0 END)
                    / (1 + 0.5::float8 * vp1::int + 0.5::float8 * vn1::int) AS cos_ctx,
                dl, {around("dl")} AS wl,
                {", ".join(f"((terms_mask >> {k - 1}) & 1)::float AS tf{k}" for k in ks)},
                {", ".join(f"{around('terms_mask', k - 1)} AS wtf{k}" for k in ks)}
            FROM (
                SELECT x.*,
                    -- neighbours: consecutive memories of the scope recorded within :gap of each other
                    coalesce(lag(created_at) OVER w BETWEEN created_at - CAST(:gap AS interval) AND created_at + CAST(:gap AS interval), false) AS vp1,
                    coalesce(lead(created_at) OVER w BETWEEN created_at - CAST(:gap AS interval) AND created_at + CAST(:gap AS interval), false) AS vn1,
                    coalesce(lag(created_at) OVER w BETWEEN created_at - CAST(:gap AS interval) AND created_at + CAST(:gap AS interval)
                        AND lag(created_at, 2) OVER w BETWEEN lag(created_at) OVER w - CAST(:gap AS interval)
                                                          AND lag(created_at) OVER w + CAST(:gap AS interval), false) AS vp2,
                    coalesce(lead(created_at) OVER w BETWEEN created_at - CAST(:gap AS interval) AND created_at + CAST(:gap AS interval)
                        AND lead(created_at, 2) OVER w BETWEEN lead(created_at) OVER w - CAST(:gap AS interval)
                                                           AND lead(created_at) OVER w + CAST(:gap AS interval), false) AS vn2,
                    lag(cos) OVER w AS pcos, lead(cos) OVER w AS ncos,
                    {lagged("dl")}, {lagged("terms_mask")}
                FROM (
                    SELECT s.id, s.seq, s.skey, s.created_at, s.ent, s.cos, s.dl::float AS dl, s.terms_mask
                    FROM s
                ) AS x
                WINDOW w AS (PARTITION BY skey ORDER BY seq)
            ) AS y
            """,
            (
                "id",
                "seq",
                "skey",
                "created_at",
                "ent",
                "cos",
                "vp1",
                "vn1",
                "cos_ctx",
                "dl",
                "wl",
                *(f"tf{k}" for k in ks),
                *(f"wtf{k}" for k in ks),
            ),
        ),
        (
            "st",
            f"""
            SELECT avgdl, avgwl, {", ".join(f"idf{k}" for k in ks)},
                -- the query's whole IDF mass: BM25 divided by it is the share of the query matched
                greatest({" + ".join(f"CASE WHEN {k} <= nterms THEN idf{k} ELSE 0 END" for k in ks)}, 1e-9) AS qidf
            FROM (
                SELECT greatest(avg(dl), 1)::float AS avgdl, greatest(avg(wl), 1)::float AS avgwl,
                    (SELECT coalesce(cardinality(q), 0) FROM terms) AS nterms,
                    {
                ", ".join(
                    f"ln(1 + (count(*) - count(*) FILTER (WHERE tf{k} > 0) + 0.5::float8)"
                    f" / (count(*) FILTER (WHERE tf{k} > 0) + 0.5::float8)) AS idf{k}"
                    for k in ks
                )
            }
                FROM o
            ) AS x
            """,
            ("avgdl", "avgwl", *(f"idf{k}" for k in ks), "qidf"),
        ),
        (
            "fused",
            f"""
            SELECT o.id, o.seq, o.skey, o.vp1, o.vn1,
                :w_d1 * greatest(o.cos, 0) + :w_d2 * greatest(o.cos_ctx, 0) AS semantic,
                :w_b1 * least(1, b.b1 / st.qidf) + :w_b2 * least(1, b.b2 / (2 * st.qidf)) AS keyword,
                :w_e * o.ent AS entity,
                :w_t * CASE WHEN EXISTS (
                        SELECT 1 FROM unnest(CAST(:p_start AS timestamptz[]), CAST(:p_end AS timestamptz[])) AS p(a, z)
                        WHERE o.created_at >= p.a AND o.created_at < p.z)
                      OR extract(month FROM o.created_at) = ANY(CAST(:months AS int[]))
                      OR extract(month FROM o.created_at - interval '7 days') = ANY(CAST(:months AS int[]))
                     THEN 1.0::float8 ELSE 0.0::float8 END AS temporal
            FROM o CROSS JOIN st
            CROSS JOIN LATERAL (SELECT {bm("o.tf", "o.dl", "st.avgdl")} AS b1,
                                       {bm("o.wtf", "o.wl", "st.avgwl")} AS b2) AS b
            """,
            ("id", "seq", "skey", "vp1", "vn1", "semantic", "keyword", "entity", "temporal"),
        ),
        (
            "ranked",  # a memory is also partly as relevant as its best neighbour
            """
            SELECT id, semantic, keyword, entity, temporal, ctx AS context, semantic + keyword + entity + temporal + ctx AS total
            FROM (
                SELECT id, semantic, keyword, entity, temporal,
                    :w_n * greatest(
                        CASE WHEN vp1 THEN lag(semantic + keyword + entity + temporal) OVER w ELSE 0 END,
                        CASE WHEN vn1 THEN lead(semantic + keyword + entity + temporal) OVER w ELSE 0 END) AS ctx
                FROM fused WINDOW w AS (PARTITION BY skey ORDER BY seq)
            ) AS x
            """,
            ("id", "semantic", "keyword", "entity", "temporal", "context", "total"),
        ),
    ]


_TERMS_CTE = (
    text(  # the query's distinct stemmed words, each as a one-word tsquery
        "SELECT array_agg(CAST(quote_literal(lexeme) AS tsquery)) AS q FROM "
        f"(SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', :qtext)) LIMIT {MAX_TERMS}) AS t"
    )
    .columns(column("q"))
    .cte("terms")
    .prefix_with("MATERIALIZED")
)
# bit k-1 set when the memory contains the query's k-th term
_TERMS_MASK = " | ".join(
    f"(coalesce((memories.tsv @@ terms.q[{k}])::int, 0) << {k - 1})" for k in range(1, MAX_TERMS + 1)
)


def _names_matched() -> Any:
    """The share of the query's names that the memory mentions, as whole words (0 without names)."""
    names = bindparam("names", type_=ARRAY(Text))
    name = func.unnest(names).table_valued("n").render_derived()
    word = (literal("\\m") + name.c.n + literal("\\M")).self_group()
    matched = (
        select(func.count())
        .select_from(name)
        .where(M.c.memory.op("~*", is_comparison=True)(word))
        .correlate(M)
        .scalar_subquery()
    )
    return case(
        (func.cardinality(names) == 0, literal(0.0, Float)),
        else_=cast(matched, Float) / cast(func.cardinality(names), Float),
    )


_HYBRID_CTES = _hybrid_ctes()
_HYBRID_CTE_OBJECTS = [_cte(name, sql, cols) for name, sql, cols in _HYBRID_CTES]  # immutable: built once
