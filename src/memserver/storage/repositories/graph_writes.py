"""The Postgres graph store: entity nodes and bi-temporal relations, in the memories' database and transaction.

Writes are here; reads are `GraphReads` (`graph_reads.py`), which this store extends.

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

from memserver.domain.relations import GraphChanges, KnownNode, RelationDraft, Resolution, Triple, name_key
from memserver.domain.scope import ENTITY_FIELDS, Scope
from memserver.storage.db import VECTOR_ARRAY_PARAM, VECTOR_PARAM
from memserver.storage.repositories.graph_reads import EXACT_LIMIT, GraphReads, eq_filter

# Entity resolution is a decision (pipeline.relation_extract.resolve); the service hands it to the store.
Resolver = Callable[[list[tuple[str, str, Any]], list[KnownNode]], list[Resolution]]


def _scope_exact(alias: str = "") -> str:
    """Exactly the scope given as parameters :user_id, :agent_id, :app_id, :run_id (unset ones must be unset)."""
    return " AND ".join(f"{alias}{c} IS NOT DISTINCT FROM :{c}" for c in ENTITY_FIELDS)


_SCOPE_EXACT = _scope_exact()
_NEAREST_PER_NAME = 5

# Nearest entities of a scope: exact scan of a small scope, HNSW for a large one (see graph_reads.EXACT_LIMIT).
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
).bindparams(bindparam("vectors", type_=VECTOR_ARRAY_PARAM))

_INSERT_NODE = text(
    """
    INSERT INTO graph_nodes (project_id, user_id, agent_id, app_id, run_id, name, key, type, embedding)
    VALUES (:project_id, :user_id, :agent_id, :app_id, :run_id, :name, :key, :type, CAST(:embedding AS vector))
    ON CONFLICT (project_id, user_id, agent_id, app_id, run_id, key) DO UPDATE SET updated_at = now()
    RETURNING id, name
    """
).bindparams(bindparam("embedding", type_=VECTOR_PARAM))

_ADD_ALIAS = text(
    """
    UPDATE graph_nodes SET aliases = array_append(aliases, :alias), updated_at = now()
    WHERE id = :id AND project_id = :project_id AND NOT (:alias = ANY(aliases))
    """
)

# The same relation is already recorded for the new one's start: current, and not ended before it began
# (one that ended earlier, "lived in Lisbon until 2020", and holds again, "back in Lisbon since 2024", is a
# new period). Two concurrent adds may still both write one: no constraint, a rare and harmless duplicate.
_CURRENT_SAME = text(
    """
    SELECT id FROM graph_relations
    WHERE project_id = :project_id AND source_id = :source_id AND relationship = :relationship
      AND target_id = :target_id AND expired_at IS NULL AND (invalid_at IS NULL OR invalid_at > :starts)
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
# learnt that now (expired_at). A relation the conversation already closed keeps its own invalid_at. Only
# relations of the new relation's own scope: an add never retires another scope's (an agent's shared graph).
# Nor a relation stated by an immutable memory: an immutable memory is never changed, and what it states
# stays current beside the new relation (as the two memories do), until the memory itself is deleted.
_RETIRE = text(
    f"""
    UPDATE graph_relations r
    SET invalid_at = COALESCE(r.invalid_at, :ended_at), expired_at = now(), invalidated_by = :by
    FROM graph_nodes s, graph_nodes t
    WHERE r.project_id = :project_id AND r.id = ANY(:ids) AND r.expired_at IS NULL AND {_scope_exact("r.")}
      AND s.id = r.source_id AND t.id = r.target_id
      AND NOT EXISTS (
        SELECT 1 FROM memories m WHERE m.project_id = r.project_id AND m.id = r.memory_id AND m.immutable
      )
    RETURNING r.id, s.name AS source, s.type AS source_type, r.relationship, t.name AS target, t.type AS target_type
    """
)


def _scope_params(scope: Scope) -> dict[str, Any]:
    return scope.as_dict()


def _array(value: Any) -> Any:
    """A stored vector as a numpy array (the binary codec returns pgvector's Vector)."""
    return value.to_numpy() if isinstance(value, Vector) else value


class PostgresGraphStore(GraphReads):
    """Graph reads and writes on one connection (the caller's transaction, for writes)."""

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
        starts = d.valid_at or observed_at
        if (await self.conn.execute(_CURRENT_SAME, {**same, "starts": starts})).first() is None:
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
                    "valid_at": starts,
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
                {
                    "project_id": project_id,
                    "ids": list(d.replaces),
                    "by": rid,
                    "ended_at": d.valid_at or observed_at,
                    **_scope_params(d.scope),
                },
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
        return int(result.rowcount or 0)

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
        return int(result.rowcount or 0)

    async def delete_entity_nodes(self, project_id: uuid.UUID, ids: Mapping[str, str]) -> int:
        """Delete every node (and so relation) of the scopes an entity id names (a deleted user, agent...)."""
        cond, params = eq_filter(ids, "n")
        if not cond:
            return 0
        stmt = text(f"DELETE FROM graph_nodes n WHERE n.project_id = :project_id{cond}")
        result = await self.conn.execute(stmt, {"project_id": project_id, **params})
        return int(result.rowcount or 0)

    async def delete_node(self, project_id: uuid.UUID, node_id: int) -> int:
        """Delete one graph entity and its relations."""
        stmt = text("DELETE FROM graph_nodes WHERE project_id = :project_id AND id = :id")
        result = await self.conn.execute(stmt, {"project_id": project_id, "id": node_id})
        return int(result.rowcount or 0)
