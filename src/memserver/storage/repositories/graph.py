"""The Postgres graph store: entity nodes and bi-temporal relations, in the memories' database and transaction.

`PostgresGraphStore(conn)` runs on the connection the memory write uses, so an add's memories and its
relations commit (or roll back) together. Every method takes the project id; reads also take the
request's entity ids (`user_id`, `agent_id`, `app_id`, `run_id` equalities). A contradicted relation is
retired (`expired_at`, `invalid_at`, `invalidated_by`), never deleted; deleting a memory deletes the
relations it gave (foreign key, plus `delete_orphans` for the nodes left without relations).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pgvector import Vector
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from memserver.domain.graph import GraphChanges, KnownNode, RelationDraft, RelationRecord, Resolution, Triple, name_key
from memserver.domain.scope import ENTITY_FIELDS, Scope
from memserver.storage.repositories.search import _VECTOR_ARRAY, _VECTOR_PARAM

# Entity resolution is a decision (pipeline.graph.resolve); the service hands it to the store.
Resolver = Callable[[list[tuple[str, str, Any]], list[KnownNode]], list[Resolution]]


def _scope_exact(alias: str = "") -> str:
    """Exactly the scope given as parameters :user_id, :agent_id, :app_id, :run_id (unset ones must be unset)."""
    return " AND ".join(f"{alias}{c} IS NOT DISTINCT FROM :{c}" for c in ENTITY_FIELDS)


_SCOPE_EXACT = _scope_exact()
_NEAREST_PER_NAME = 5

# A scope of at most EXACT_LIMIT entities (a user's) is scanned exactly through its B-tree index: walking the
# project-wide HNSW index for a small scope would read far more entities than the scope has. A larger scope
# uses the HNSW index (iterative scans keep the filter). The size is counted only up to the limit.
EXACT_LIMIT = 2000
_SMALL = f"""(SELECT count(*) FROM (SELECT 1 FROM graph_nodes c WHERE c.project_id = :project_id AND
    {_scope_exact("c.")} LIMIT {EXACT_LIMIT + 1}) s) <= {EXACT_LIMIT}"""

_KNOWN = text(
    f"""
    WITH q AS (SELECT v FROM unnest(CAST(:vectors AS vector[])) AS q(v)), near AS (
        SELECT near.id FROM q CROSS JOIN LATERAL (
          SELECT id FROM graph_nodes
          WHERE project_id = :project_id AND {_SCOPE_EXACT} AND embedding IS NOT NULL AND {_SMALL}
          ORDER BY (embedding <=> q.v) + 0 LIMIT {_NEAREST_PER_NAME}
        ) AS near
        UNION ALL
        SELECT near.id FROM q CROSS JOIN LATERAL (
          SELECT id FROM graph_nodes
          WHERE project_id = :project_id AND {_SCOPE_EXACT} AND embedding IS NOT NULL AND NOT {_SMALL}
          ORDER BY embedding <=> q.v LIMIT {_NEAREST_PER_NAME}
        ) AS near
    )
    SELECT id, name, type, aliases, embedding FROM graph_nodes
    WHERE project_id = :project_id AND {_SCOPE_EXACT}
      AND (key = ANY(:keys) OR aliases && :names OR id IN (SELECT id FROM near))
    """
).bindparams(bindparam("vectors", type_=_VECTOR_ARRAY))

_INSERT_NODE = text(
    """
    INSERT INTO graph_nodes (project_id, user_id, agent_id, app_id, run_id, name, key, type, embedding)
    VALUES (:project_id, :user_id, :agent_id, :app_id, :run_id, :name, :key, :type, CAST(:embedding AS vector))
    ON CONFLICT (project_id, user_id, agent_id, app_id, run_id, key) DO UPDATE SET updated_at = now()
    RETURNING id, name
    """
).bindparams(bindparam("embedding", type_=_VECTOR_PARAM))

_ADD_ALIAS = text(
    """
    UPDATE graph_nodes SET aliases = array_append(aliases, :alias), updated_at = now()
    WHERE id = :id AND project_id = :project_id AND NOT (:alias = ANY(aliases))
    """
)

_CURRENT_SAME = text(
    """
    SELECT id FROM graph_relations
    WHERE project_id = :project_id AND source_id = :source_id AND relationship = :relationship
      AND target_id = :target_id AND expired_at IS NULL
    LIMIT 1
    """
)

_INSERT_RELATION = text(
    """
    INSERT INTO graph_relations (id, project_id, user_id, agent_id, app_id, run_id, source_id, relationship,
                                 target_id, fact, memory_id, event_id, valid_at, invalid_at)
    VALUES (:id, :project_id, :user_id, :agent_id, :app_id, :run_id, :source_id, :relationship, :target_id,
            :fact, :memory_id, :event_id, :valid_at, :invalid_at)
    """
)

# Retire: it stopped holding when the new relation started (Graphiti's invalid_at), and memserver
# learnt that now (expired_at). A relation the conversation already closed keeps its own invalid_at.
_RETIRE = text(
    """
    UPDATE graph_relations r
    SET invalid_at = COALESCE(r.invalid_at, :ended_at), expired_at = now(), invalidated_by = :by
    FROM graph_nodes s, graph_nodes t
    WHERE r.project_id = :project_id AND r.id = ANY(:ids) AND r.expired_at IS NULL
      AND s.id = r.source_id AND t.id = r.target_id
    RETURNING r.id, s.name AS source, s.type AS source_type, r.relationship, t.name AS target, t.type AS target_type
    """
)

_SELECT = """
    SELECT r.id, s.name AS source, s.type AS source_type, r.relationship, t.name AS target,
           t.type AS target_type, r.fact, r.memory_id, r.event_id, r.valid_at, r.invalid_at, r.created_at,
           r.expired_at, r.invalidated_by, r.user_id, r.agent_id, r.app_id, r.run_id
    FROM graph_relations r
    JOIN graph_nodes s ON s.id = r.source_id
    JOIN graph_nodes t ON t.id = r.target_id
"""
_CURRENT = "r.expired_at IS NULL AND (r.invalid_at IS NULL OR r.invalid_at > now())"


def _scope_params(scope: Scope) -> dict[str, Any]:
    return scope.as_dict()


def _eq_filter(ids: Mapping[str, str], alias: str) -> tuple[str, dict[str, Any]]:
    """SQL and parameters for the request's entity id equalities on table `alias`."""
    conds, params = [], {}
    for col in ENTITY_FIELDS:
        if col in ids:
            conds.append(f"{alias}.{col} = :f_{col}")
            params[f"f_{col}"] = ids[col]
    return "".join(f" AND {c}" for c in conds), params


def _array(value: Any) -> Any:
    """A stored vector as a numpy array (the binary codec returns pgvector's Vector)."""
    return value.to_numpy() if isinstance(value, Vector) else value


def _record(row: Any, score: float | None = None) -> RelationRecord:
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


class PostgresGraphStore:
    """Graph reads and writes on one connection (the caller's transaction, for writes)."""

    def __init__(self, conn: AsyncConnection):
        self.conn = conn

    # ------------------------------------------------------------------------------------------
    # writes
    # ------------------------------------------------------------------------------------------
    async def write(
        self,
        project_id: uuid.UUID,
        drafts: Sequence[RelationDraft],
        vectors: Mapping[str, Any],
        *,
        event_id: uuid.UUID | None,
        observed_at: datetime,
        resolve: Resolver,
    ) -> GraphChanges:
        """Resolve the drafts' entities against their scope's nodes, add the new relations, retire those they end.

        `vectors` maps each entity name to its unit embedding. A relation already current with the same
        source, relationship and target is not added again.
        """
        changes = GraphChanges()
        nodes: dict[tuple[Scope, str], tuple[int, str, str]] = {}  # (scope, name) -> (node id, name, type)
        for scope in dict.fromkeys(d.scope for d in drafts):
            names = list(
                dict.fromkeys(
                    (n, t)
                    for d in drafts
                    if d.scope == scope
                    for n, t in ((d.source, d.source_type), (d.target, d.target_type))
                )
            )
            for (name, ntype), node in zip(
                names, await self._resolve_scope(project_id, scope, names, vectors, resolve), strict=True
            ):
                nodes[(scope, name)] = (node[0], node[1], ntype)
        for d in drafts:
            src, tgt = nodes[(d.scope, d.source)], nodes[(d.scope, d.target)]
            if src[0] == tgt[0]:
                continue  # a relation of an entity with itself (two spellings of one) says nothing
            await self._relate(project_id, d, src, tgt, event_id, observed_at, changes)
        return changes

    async def _resolve_scope(
        self,
        project_id: uuid.UUID,
        scope: Scope,
        names: list[tuple[str, str]],
        vectors: Mapping[str, Any],
        resolve: Resolver,
    ) -> list[tuple[int, str]]:
        """(node id, node name) for each (name, type): an existing node, or a node created now."""
        params = {
            "project_id": project_id,
            **_scope_params(scope),
            "keys": [name_key(n) for n, _ in names],
            "names": [n for n, _ in names],
            "vectors": [Vector(vectors[n]) for n, _ in names if vectors.get(n) is not None],
        }
        known = [
            KnownNode(r.id, r.name, r.type, tuple(r.aliases or ()), _array(r.embedding))
            for r in await self.conn.execute(_KNOWN, params)
        ]
        resolutions = resolve([(n, t, vectors.get(n)) for n, t in names], known)
        created: dict[int, tuple[int, str]] = {}
        out: list[tuple[int, str]] = []
        for res in resolutions:
            out.append(await self._node_of(project_id, scope, res, vectors, created))
        return out

    async def _node_of(
        self,
        project_id: uuid.UUID,
        scope: Scope,
        res: Resolution,
        vectors: Mapping[str, Any],
        created: dict[int, tuple[int, str]],
    ) -> tuple[int, str]:
        assert res.node_id is not None
        if res.node_id >= 0:
            if res.alias:
                await self.conn.execute(_ADD_ALIAS, {"id": res.node_id, "project_id": project_id, "alias": res.name})
            return res.node_id, res.canonical
        if res.node_id in created:  # a later spelling of a node this add created
            return created[res.node_id]
        vec = vectors.get(res.canonical)
        row = (
            await self.conn.execute(
                _INSERT_NODE,
                {
                    "project_id": project_id,
                    **_scope_params(scope),
                    "name": res.canonical,
                    "key": name_key(res.canonical),
                    "type": res.type,
                    "embedding": Vector(vec) if vec is not None else None,
                },
            )
        ).one()
        created[res.node_id] = (row.id, row.name)
        return created[res.node_id]

    async def _relate(
        self,
        project_id: uuid.UUID,
        d: RelationDraft,
        src: tuple[int, str, str],
        tgt: tuple[int, str, str],
        event_id: uuid.UUID | None,
        observed_at: datetime,
        changes: GraphChanges,
    ) -> None:
        same = {"project_id": project_id, "source_id": src[0], "relationship": d.relationship, "target_id": tgt[0]}
        if (await self.conn.execute(_CURRENT_SAME, same)).first() is None:
            rid = uuid.uuid4()
            await self.conn.execute(
                _INSERT_RELATION,
                {
                    **same,
                    "id": rid,
                    **_scope_params(d.scope),
                    "fact": d.fact,
                    "memory_id": d.memory_id,
                    "event_id": event_id,
                    "valid_at": d.valid_at or observed_at,
                    "invalid_at": d.invalid_at,
                },
            )
            changes.added.append(Triple(src[1], src[2], d.relationship, tgt[1], tgt[2]))
            changes.relation_ids.append(rid)
        else:
            rid = None
        if d.replaces:
            retired = await self.conn.execute(
                _RETIRE,
                {"project_id": project_id, "ids": list(d.replaces), "by": rid, "ended_at": d.valid_at or observed_at},
            )
            for r in retired:
                changes.retired.append(Triple(r.source, r.source_type, r.relationship, r.target, r.target_type))
                changes.relation_ids.append(r.id)

    async def expire_memory_relations(self, project_id: uuid.UUID, memory_id: uuid.UUID) -> int:
        """A memory's text was rewritten by hand: the relations it gave are no longer stated by any memory.
        They are retired as recorded knowledge (expired_at), their valid time left as it was."""
        stmt = text(
            "UPDATE graph_relations SET expired_at = now() "
            "WHERE project_id = :project_id AND memory_id = :memory_id AND expired_at IS NULL"
        )
        result = await self.conn.execute(stmt, {"project_id": project_id, "memory_id": memory_id})
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def delete_orphans(self, project_id: uuid.UUID, node_ids: Sequence[int]) -> int:
        """Delete those nodes that no relation uses any more (after their memories were deleted)."""
        if not node_ids:
            return 0
        stmt = text(
            """
            DELETE FROM graph_nodes n WHERE n.project_id = :project_id AND n.id = ANY(:ids)
              AND NOT EXISTS (SELECT 1 FROM graph_relations r WHERE r.source_id = n.id)
              AND NOT EXISTS (SELECT 1 FROM graph_relations r WHERE r.target_id = n.id)
            """
        )
        result = await self.conn.execute(stmt, {"project_id": project_id, "ids": list(node_ids)})
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def delete_entity_nodes(self, project_id: uuid.UUID, ids: Mapping[str, str]) -> int:
        """Delete every node (and so relation) of the scopes an entity id names (a deleted user, agent...)."""
        cond, params = _eq_filter(ids, "n")
        if not cond:
            return 0
        stmt = text(f"DELETE FROM graph_nodes n WHERE n.project_id = :project_id{cond}")
        result = await self.conn.execute(stmt, {"project_id": project_id, **params})
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def delete_node(self, project_id: uuid.UUID, node_id: int) -> int:
        """Delete one graph entity and its relations."""
        stmt = text("DELETE FROM graph_nodes WHERE project_id = :project_id AND id = :id")
        result = await self.conn.execute(stmt, {"project_id": project_id, "id": node_id})
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------------------------------
    # reads
    # ------------------------------------------------------------------------------------------
    async def project_default(self, project_id: uuid.UUID) -> bool:
        """The project setting `enable_graph` (false when unset)."""
        stmt = text("SELECT (settings ->> 'enable_graph')::boolean FROM projects WHERE id = :id")
        return bool((await self.conn.execute(stmt, {"id": project_id})).scalar_one_or_none())

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
        return [_record(r) for r in await self.conn.execute(stmt, params)]

    async def current(self, project_id: uuid.UUID, ids: Mapping[str, str], *, limit: int) -> list[RelationRecord]:
        """The scope's relations that hold now, newest first (v2 get_all `relations`)."""
        cond, params = _eq_filter(ids, "r")
        stmt = text(
            f"{_SELECT} WHERE r.project_id = :project_id{cond} AND {_CURRENT} ORDER BY r.created_at DESC LIMIT :limit"
        )
        rows = await self.conn.execute(stmt, {"project_id": project_id, "limit": limit, **params})
        return [_record(r) for r in rows]

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
        cond, params = _eq_filter(ids, "n")
        rcond, rparams = _eq_filter(ids, "r")
        ccond, _ = _eq_filter(ids, "c")
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
        ).bindparams(bindparam("qvec", type_=_VECTOR_PARAM))
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
        return [_record(r, round(max(0.0, min(1.0, float(r.score))), 6)) for r in rows]

    async def scope_relations(self, project_id: uuid.UUID, scope: Scope) -> list[RelationRecord]:
        """Every relation of exactly this scope, current and retired (what the Neo4j mirror copies)."""
        stmt = text(
            f"{_SELECT} WHERE r.project_id = :project_id AND "
            + " AND ".join(f"r.{c} IS NOT DISTINCT FROM :{c}" for c in ENTITY_FIELDS)
            + " ORDER BY r.created_at"
        )
        return [_record(r) for r in await self.conn.execute(stmt, {"project_id": project_id, **scope.as_dict()})]

    async def nodes_named(self, project_id: uuid.UUID, ids: Mapping[str, str], name: str) -> list[Any]:
        """The scope's nodes with this name or alias (normalised)."""
        cond, params = _eq_filter(ids, "n")
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
        return [_record(r) for r in await self.conn.execute(stmt, params)]
