"""Graph reads of the Postgres graph store: the relations an add is shown, what holds now, search, timelines.

Every method takes the project id; reads also take the request's entity ids (`user_id`, `agent_id`,
`app_id`, `run_id` equalities). `PostgresGraphStore` (`storage.repositories.graph_writes`) adds the writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pgvector import Vector
from sqlalchemy import bindparam, text

from memserver.domain.relations import RelationRecord, Triple, name_key
from memserver.domain.scope import ENTITY_FIELDS, Scope
from memserver.storage.db import VECTOR_PARAM
from memserver.storage.repositories.base import Repository

# A scope of at most EXACT_LIMIT entities (a user's) is scanned exactly through its B-tree index: walking the
# project-wide HNSW index for a small scope would read far more entities than the scope has. A larger scope
# uses the HNSW index (iterative scans keep the filter). The size is counted only up to the limit.
EXACT_LIMIT = 2000
# Graph-aware search: at most this many entities named by one query start a walk, and relation counts (the
# IDF of an entity) stop at IDF_CAP: past it, an entity is as common as the scope is large.
MAX_NAMED = 10
IDF_CAP = 10_000

_SELECT = """
    SELECT r.id, s.name AS source, s.type AS source_type, r.relationship, t.name AS target,
           t.type AS target_type, r.fact, r.memory_id, r.event_id, r.valid_at, r.invalid_at, r.created_at,
           r.expired_at, r.invalidated_by, r.user_id, r.agent_id, r.app_id, r.run_id
    FROM graph_relations r
    JOIN graph_nodes s ON s.id = r.source_id
    JOIN graph_nodes t ON t.id = r.target_id
"""
_CURRENT = "r.expired_at IS NULL AND (r.invalid_at IS NULL OR r.invalid_at > now())"


def eq_filter(ids: Mapping[str, str], alias: str) -> tuple[str, dict[str, Any]]:
    """SQL and parameters for the request's entity id equalities on table `alias`."""
    conds, params = [], {}
    for col in ENTITY_FIELDS:
        if col in ids:
            conds.append(f"{alias}.{col} = :f_{col}")
            params[f"f_{col}"] = ids[col]
    return "".join(f" AND {c}" for c in conds), params


def record(row: Any, score: float | None = None) -> RelationRecord:
    return RelationRecord(
        id=row.id,
        triple=Triple(row.source, row.source_type, row.relationship, row.target, row.target_type),
        fact=row.fact,
        memory_id=row.memory_id,
        event_id=row.event_id,
        valid_at=row.valid_at,
        invalid_at=row.invalid_at,
        created_at=row.created_at,
        expired_at=row.expired_at,
        invalidated_by=row.invalidated_by,
        scope=Scope(user_id=row.user_id, agent_id=row.agent_id, app_id=row.app_id, run_id=row.run_id),
        score=score,
    )


class GraphReads(Repository):
    """Graph reads on one connection."""

    async def context(
        self,
        project_id: uuid.UUID,
        scopes: Sequence[Scope],
        memory_ids: Sequence[uuid.UUID],
        grams: Sequence[str],
        *,
        limit: int,
    ) -> list[RelationRecord]:
        """Current relations an add's extraction should see: those of the memories shown to the model, and
        those of the scopes' entities the new messages name (`grams`: their normalised word n-grams)."""
        node_scope = " OR ".join(
            "(" + " AND ".join(f"n.{c} IS NOT DISTINCT FROM :s{i}_{c}" for c in ENTITY_FIELDS) + ")"
            for i in range(len(scopes))
        )
        params: dict[str, Any] = {
            "project_id": project_id,
            "mids": list(memory_ids),
            "grams": list(grams),
            "limit": limit,
        }
        for i, s in enumerate(scopes):
            params.update({f"s{i}_{c}": v for c, v in s.as_dict().items()})
        stmt = text(
            f"""
            WITH named AS (
                SELECT n.id FROM graph_nodes n
                WHERE n.project_id = :project_id AND n.key = ANY(:grams) AND ({node_scope})
            ), ids AS (
                SELECT r.id FROM graph_relations r WHERE r.memory_id = ANY(:mids) AND r.project_id = :project_id
                UNION SELECT r.id FROM named JOIN graph_relations r ON r.source_id = named.id
                UNION SELECT r.id FROM named JOIN graph_relations r ON r.target_id = named.id
            )
            {_SELECT} JOIN ids ON ids.id = r.id
            WHERE r.expired_at IS NULL
            ORDER BY r.created_at DESC LIMIT :limit
            """
        )
        return [record(r) for r in await self.conn.execute(stmt, params)]

    async def current(self, project_id: uuid.UUID, ids: Mapping[str, str], *, limit: int) -> list[RelationRecord]:
        """The scope's relations that hold now, newest first (v2 get_all `relations`)."""
        cond, params = eq_filter(ids, "r")
        stmt = text(
            f"{_SELECT} WHERE r.project_id = :project_id{cond} AND {_CURRENT} ORDER BY r.created_at DESC LIMIT :limit"
        )
        rows = await self.conn.execute(stmt, {"project_id": project_id, "limit": limit, **params})
        return [record(r) for r in rows]

    async def search(
        self,
        project_id: uuid.UUID,
        ids: Mapping[str, str],
        grams: Sequence[str],
        vector: Any,
        *,
        limit: int,
        min_similarity: float,
    ) -> list[RelationRecord]:
        """Current relations of the entities the query names (by name or alias words, or by meaning), best
        first: score = how well the query names its best endpoint (1 for a name it contains, else cosine)."""
        cond, params = eq_filter(ids, "n")
        rcond, rparams = eq_filter(ids, "r")
        ccond, _ = eq_filter(ids, "c")
        small = (
            f"(SELECT count(*) FROM (SELECT 1 FROM graph_nodes c WHERE c.project_id = :project_id{ccond} "
            f"LIMIT {EXACT_LIMIT + 1}) s) <= {EXACT_LIMIT}"
        )
        stmt = text(
            f"""
            WITH named AS (
                SELECT n.id, 1.0::float8 AS score FROM graph_nodes n
                WHERE n.project_id = :project_id{cond} AND (n.key = ANY(:grams) OR n.aliases && :raw)
                UNION ALL
                SELECT near.id, near.score FROM (
                    SELECT n.id, 1 - (n.embedding <=> CAST(:qvec AS vector)) AS score FROM graph_nodes n
                    WHERE n.project_id = :project_id{cond} AND n.embedding IS NOT NULL AND {small}
                    ORDER BY (n.embedding <=> CAST(:qvec AS vector)) + 0 LIMIT 10
                ) near WHERE near.score >= :min_similarity
                UNION ALL
                SELECT near.id, near.score FROM (
                    SELECT n.id, 1 - (n.embedding <=> CAST(:qvec AS vector)) AS score FROM graph_nodes n
                    WHERE n.project_id = :project_id{cond} AND n.embedding IS NOT NULL AND NOT {small}
                    ORDER BY n.embedding <=> CAST(:qvec AS vector) LIMIT 10
                ) near WHERE near.score >= :min_similarity
            ), hit AS (SELECT id, max(score) AS score FROM named GROUP BY id),
            rel AS (  -- two index joins (source, target): an OR join would read the whole scope
                SELECT id, max(score) AS score FROM (
                    SELECT r.id, h.score FROM hit h JOIN graph_relations r ON r.source_id = h.id
                    WHERE r.project_id = :project_id{rcond} AND {_CURRENT}
                    UNION ALL
                    SELECT r.id, h.score FROM hit h JOIN graph_relations r ON r.target_id = h.id
                    WHERE r.project_id = :project_id{rcond} AND {_CURRENT}
                ) x GROUP BY id
            )
            {_SELECT.replace("FROM graph_relations r", ", rel.score FROM graph_relations r")} JOIN rel ON rel.id = r.id
            ORDER BY rel.score DESC, r.created_at DESC LIMIT :limit
            """
        ).bindparams(bindparam("qvec", type_=VECTOR_PARAM))
        params.update(rparams)
        rows = await self.conn.execute(
            stmt,
            {
                "project_id": project_id,
                "grams": list(grams),
                "raw": list(grams),
                "qvec": Vector(vector),
                "min_similarity": min_similarity,
                "limit": limit,
                **params,
            },
        )
        return [record(r, round(max(0.0, min(1.0, float(r.score))), 6)) for r in rows]

    async def memory_scores(
        self,
        project_id: uuid.UUID,
        ids: Mapping[str, str],
        keys: Sequence[str],
        names: Sequence[str],
        *,
        hops: int,
        fanout: int,
        hop_decay: float,
    ) -> dict[uuid.UUID, float]:
        """Graph-aware search: memory id -> 0..1 graph score, from the neighbourhood of the entities the query
        names (`keys`: normalised word n-grams matched against entity names; `names`: n-grams as written,
        matched against aliases).

        A walk from each named entity along current relations (not retired, not invalidated), `fanout`
        newest per entity and side, up to `hops` relations away. A relation touching an entity reached at
        hop h scores w(entity): w(named) = idf(named), w(next) = w(prev) x hop_decay x idf(next); a memory
        scores its best relation. idf(e) = ln((N + 1) / df) / ln(N + 1), N the scope's relations (retired
        included: an index-only count) and df the entity's unretired ones, both counted up to IDF_CAP: 1 for
        an entity in one relation, about 0 for one in all of them (a speaker named in every message carries
        no signal).
        """
        ncond, params = eq_filter(ids, "n")
        rcond, rparams = eq_filter(ids, "r")
        ccond, _ = eq_filter(ids, "c")
        edges = f"""
            SELECT e.memory_id, e.other FROM (
                (SELECT r.memory_id, r.target_id AS other, r.created_at FROM graph_relations r
                 WHERE r.source_id = {{node}} AND r.expired_at IS NULL AND (r.invalid_at IS NULL OR r.invalid_at > now())
                   AND r.project_id = :project_id{rcond}
                 ORDER BY r.created_at DESC LIMIT :fanout)
                UNION ALL
                (SELECT r.memory_id, r.source_id AS other, r.created_at FROM graph_relations r
                 WHERE r.target_id = {{node}} AND r.expired_at IS NULL AND (r.invalid_at IS NULL OR r.invalid_at > now())
                   AND r.project_id = :project_id{rcond}
                 ORDER BY r.created_at DESC LIMIT :fanout)
            ) e ORDER BY e.created_at DESC LIMIT :fanout
        """
        idf = """
            SELECT CASE WHEN s.n < 2 THEN 1.0::float8
                        ELSE greatest(0.0, ln((s.n + 1) / greatest(d.df, 1)) / ln(s.n + 1)) END AS w
            FROM scope_size s, (SELECT count(*)::float8 AS df FROM (
                SELECT 1 FROM graph_relations d WHERE d.source_id = {node} AND d.expired_at IS NULL
                UNION ALL SELECT 1 FROM graph_relations d WHERE d.target_id = {node} AND d.expired_at IS NULL
                LIMIT :cap
            ) y) d
        """
        # The walk's rows are relations: (memory, the entity at its far end, hop, weight). CTEs are read
        # lazily: when the query names no entity of the scope, nothing past `named` runs.
        stmt = text(
            f"""
            WITH RECURSIVE named AS MATERIALIZED (
                SELECT n.id FROM graph_nodes n
                WHERE n.project_id = :project_id{ncond} AND (n.key = ANY(:keys) OR n.aliases && :names)
                LIMIT :max_named
            ), scope_size AS MATERIALIZED (
                SELECT count(*)::float8 AS n FROM (
                    SELECT 1 FROM graph_relations c WHERE c.project_id = :project_id{ccond} LIMIT :cap
                ) x
            ), walk (memory_id, other, hop, weight) AS (
                SELECT e.memory_id, e.other, 0, idf.w
                FROM named CROSS JOIN LATERAL ({idf.format(node="named.id")}) idf
                CROSS JOIN LATERAL ({edges.format(node="named.id")}) e
                UNION ALL
                SELECT e.memory_id, e.other, w.hop + 1, w.weight * :hop_decay * idf.w
                FROM walk w CROSS JOIN LATERAL ({idf.format(node="w.other")}) idf
                CROSS JOIN LATERAL ({edges.format(node="w.other")}) e
                WHERE w.hop + 1 < :hops AND w.weight > 0
            )
            SELECT memory_id, max(weight) AS score FROM walk WHERE memory_id IS NOT NULL GROUP BY memory_id
            """
        )
        params.update(rparams)
        rows = await self.conn.execute(
            stmt,
            {
                "project_id": project_id,
                "keys": list(keys),
                "names": list(names),
                "max_named": MAX_NAMED,
                "cap": IDF_CAP,
                "fanout": fanout,
                "hops": hops,
                "hop_decay": hop_decay,
                **params,
            },
        )
        return {r.memory_id: round(max(0.0, min(1.0, float(r.score))), 6) for r in rows}

    async def scope_relations(self, project_id: uuid.UUID, scope: Scope) -> list[RelationRecord]:
        """Every relation of exactly this scope, current and retired (what the Neo4j mirror copies)."""
        stmt = text(
            f"{_SELECT} WHERE r.project_id = :project_id AND "
            + " AND ".join(f"r.{c} IS NOT DISTINCT FROM :{c}" for c in ENTITY_FIELDS)
            + " ORDER BY r.created_at"
        )
        return [record(r) for r in await self.conn.execute(stmt, {"project_id": project_id, **scope.as_dict()})]

    async def nodes_named(self, project_id: uuid.UUID, ids: Mapping[str, str], name: str) -> list[Any]:
        """The scope's nodes with this name or alias (normalised)."""
        cond, params = eq_filter(ids, "n")
        stmt = text(
            f"""
            SELECT n.id, n.name, n.type, n.aliases, n.user_id, n.agent_id, n.app_id, n.run_id, n.created_at
            FROM graph_nodes n WHERE n.project_id = :project_id{cond}
              AND (n.key = :key OR :name = ANY(n.aliases)) ORDER BY n.id
            """
        )
        rows = await self.conn.execute(stmt, {"project_id": project_id, "key": name_key(name), "name": name, **params})
        return list(rows)

    async def timeline(
        self, project_id: uuid.UUID, node_ids: Sequence[int], *, at: datetime | None = None
    ) -> list[RelationRecord]:
        """Every relation of these nodes, current or retired, in valid-time order; with `at`, only those that
        held at that moment (valid_at <= at < invalid_at), whatever memserver learnt since."""
        when = ""
        if at is not None:
            when = " AND COALESCE(r.valid_at, r.created_at) <= :at AND (r.invalid_at IS NULL OR r.invalid_at > :at)"
        stmt = text(
            f"""{_SELECT}
            WHERE r.project_id = :project_id AND (r.source_id = ANY(:ids) OR r.target_id = ANY(:ids)){when}
            ORDER BY COALESCE(r.valid_at, r.created_at), r.created_at
            """
        )
        params: dict[str, Any] = {"project_id": project_id, "ids": list(node_ids)}
        if at is not None:
            params["at"] = at
        return [record(r) for r in await self.conn.execute(stmt, params)]

    async def entities(
        self, project_id: uuid.UUID, ids: Mapping[str, str], *, prefix: str | None, limit: int
    ) -> list[Any]:
        """The scope's nodes with how many relations they are in (and how many hold now), busiest first; with
        `prefix`, only those whose name (normalised) or an alias (case aside) starts with it."""
        cond, params = eq_filter(ids, "n")
        if prefix:
            # a prefix that normalises to nothing (punctuation) is compared with the aliases as written only
            key = name_key(prefix)
            cond += (
                f" AND ({'n.key LIKE :key_prefix OR ' if key else ''}EXISTS "
                "(SELECT 1 FROM unnest(n.aliases) a WHERE lower(a) LIKE :alias_prefix))"
            )
            params["key_prefix"] = _like_prefix(key)
            params["alias_prefix"] = _like_prefix(prefix.lower())
        stmt = text(
            f"""
            WITH nodes AS (
                SELECT n.id, n.name, n.type, n.aliases FROM graph_nodes n WHERE n.project_id = :project_id{cond}
            ), ends AS (
                SELECT r.source_id AS node_id, {_CURRENT} AS current
                FROM graph_relations r JOIN nodes ON nodes.id = r.source_id
                UNION ALL
                SELECT r.target_id, {_CURRENT} FROM graph_relations r JOIN nodes ON nodes.id = r.target_id
            )
            SELECT nodes.id, nodes.name, nodes.type, nodes.aliases, count(ends.node_id) AS relations,
                   count(*) FILTER (WHERE ends.current) AS current
            FROM nodes LEFT JOIN ends ON ends.node_id = nodes.id
            GROUP BY nodes.id, nodes.name, nodes.type, nodes.aliases
            ORDER BY relations DESC, nodes.name, nodes.id LIMIT :limit
            """
        )
        return list(await self.conn.execute(stmt, {"project_id": project_id, "limit": limit, **params}))


def _like_prefix(value: str) -> str:
    """A LIKE pattern matching what starts with `value` (its wildcards escaped with LIKE's default escape, \\)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
