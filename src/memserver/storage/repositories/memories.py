"""All SQL for memories and their history. Every method takes the project id."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from pgvector import Vector
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from memserver.storage.models import Memory, MemoryHistory

M = Memory.__table__
H = MemoryHistory.__table__

ENTITY_TYPES = {"user": "user_id", "agent": "agent_id", "app": "app_id", "run": "run_id"}

# Columns returned to clients (never the embedding or the tsvector).
READ_COLUMNS = [
    M.c.id,
    M.c.user_id,
    M.c.agent_id,
    M.c.app_id,
    M.c.run_id,
    M.c.memory,
    M.c.hash,
    M.c.metadata,
    M.c.categories,
    M.c.immutable,
    M.c.expiration_date,
    M.c.replaced_by,
    M.c.source,
    M.c.role,
    M.c.created_at,
    M.c.updated_at,
]


def vector_literal(vec: NDArray[np.float32] | Sequence[float]) -> str:
    """pgvector's text form (for raw SQL clients such as the benchmarks; the API sends binary)."""
    return "[" + ",".join(map(str, np.asarray(vec, dtype=np.float32).tolist())) + "]"


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


@dataclass
class Scope:
    user_id: str | None = None
    agent_id: str | None = None
    app_id: str | None = None
    run_id: str | None = None

    def entities(self) -> list[tuple[str, str]]:
        return [(t, getattr(self, col)) for t, col in ENTITY_TYPES.items() if getattr(self, col) is not None]


@dataclass
class NewMemory:
    text: str
    hash: str
    role: str | None
    actor_id: str | None
    index: int  # position of the message in the request


@dataclass
class AddOutcome:
    index: int
    id: uuid.UUID | None
    text: str
    event: str  # ADD | NOOP


def not_expired() -> ColumnElement[bool]:
    """Expiry is inclusive of the date and evaluated in UTC."""
    return or_(M.c.expiration_date.is_(None), M.c.expiration_date >= literal_column("CURRENT_DATE"))


# Built once: this statement runs on every add.
_ADD_VERBATIM = text(
    """
        WITH input AS (
            SELECT * FROM unnest(
                CAST(:ids AS uuid[]), CAST(:texts AS text[]), CAST(:hashes AS text[]),
                CAST(:vectors AS vector[]), CAST(:roles AS text[]), CAST(:actors AS text[]),
                CAST(:ords AS int[])
            ) AS t(id, memory, hash, embedding, role, actor_id, ord)
        ),
        base AS (SELECT COALESCE(CAST(:created_at AS timestamptz), now()) AS ts),
        ins AS (
            INSERT INTO memories (id, project_id, user_id, agent_id, app_id, run_id, memory, hash, metadata,
                categories, embedding, immutable, expiration_date, role, actor_id, source, provenance, event_id,
                created_at, updated_at)
            SELECT i.id, CAST(:project_id AS uuid), CAST(:user_id AS text), CAST(:agent_id AS text),
                CAST(:app_id AS text), CAST(:run_id AS text), i.memory, i.hash,
                CAST(:metadata AS jsonb), CAST(:categories AS text[]), i.embedding, CAST(:immutable AS boolean),
                CAST(:expiration_date AS date), i.role, i.actor_id, 'verbatim',
                jsonb_build_object('event_id', CAST(:event_id AS uuid), 'message_index', i.ord),
                CAST(:event_id AS uuid),
                -- messages of one request keep their order: one microsecond apart
                b.ts + i.ord * interval '1 microsecond', b.ts + i.ord * interval '1 microsecond'
            FROM input i CROSS JOIN base b
            ORDER BY i.ord
            ON CONFLICT (project_id, user_id, agent_id, app_id, run_id, hash)
                DO UPDATE SET hash = EXCLUDED.hash
            RETURNING id, memory, hash, created_at
        ),
        outcome AS (
            SELECT i.ord, ins.id, i.memory, CASE WHEN ins.id = i.id THEN 'ADD' ELSE 'NOOP' END AS event
            FROM input i JOIN ins ON ins.hash = i.hash
        ),
        hist AS (
            INSERT INTO memory_history (id, project_id, memory_id, event, old_memory, new_memory, input,
                user_id, agent_id, app_id, run_id, categories, metadata, created_at, updated_at)
            SELECT gen_random_uuid(), :project_id, ins.id, 'ADD', NULL, ins.memory, CAST(:history_input AS jsonb),
                :user_id, :agent_id, :app_id, :run_id, CAST(:categories AS text[]), CAST(:metadata AS jsonb),
                now(), now()
            FROM ins JOIN input i ON i.id = ins.id
        ),
        ent AS (
            INSERT INTO entities (project_id, type, name)
            SELECT :project_id, e.type, e.name
            FROM unnest(CAST(:entity_types AS text[]), CAST(:entity_names AS text[])) AS e(type, name)
            ON CONFLICT DO NOTHING
        ),
        ev AS (
            INSERT INTO events (id, project_id, event_type, status, payload, results, created_at, updated_at,
                started_at, completed_at, latency_ms)
            SELECT CAST(:event_id AS uuid), CAST(:project_id AS uuid), 'ADD', 'SUCCEEDED', CAST(:payload AS jsonb),
                COALESCE((SELECT jsonb_agg(jsonb_build_object('id', o.id, 'event', o.event,
                    'data', jsonb_build_object('memory', o.memory)) ORDER BY o.ord) FROM outcome o), '[]'::jsonb),
                now(), now(), now(), clock_timestamp(),
                1000 * extract(epoch FROM clock_timestamp() - now())
        )
        SELECT ord, id, memory, event FROM outcome ORDER BY ord
        """
)


class MemoryRepository:
    def __init__(self, conn: AsyncConnection):
        self.conn = conn

    # ------------------------------------------------------------------------------------------
    # writes
    # ------------------------------------------------------------------------------------------
    async def add_verbatim(
        self,
        project_id: uuid.UUID,
        scope: Scope,
        items: Sequence[NewMemory],
        vectors: NDArray[np.float32],
        *,
        metadata: dict[str, Any] | None,
        categories: list[str] | None,
        immutable: bool,
        expiration_date: date | None,
        created_at: datetime | None,
        event_id: uuid.UUID,
        event_payload: dict[str, Any],
        history_input: list[dict[str, Any]],
    ) -> list[AddOutcome]:
        """Insert memories, their ADD history, the entities and the event in ONE statement.

        Exact duplicates in the same scope (same text hash) hit the unique index and are reported
        as NOOP with the id of the memory that already holds the text. The no-op DO UPDATE makes
        RETURNING yield that row even when a concurrent request committed it after this statement's
        snapshot (a DO NOTHING plus a lookup would miss it and answer a NOOP without an id).
        """
        ids = [uuid.uuid4() for _ in items]
        entities = scope.entities()
        params = {
            "ids": ids,
            "texts": [it.text for it in items],
            "hashes": [it.hash for it in items],
            "vectors": [Vector(v) for v in vectors],  # binary codec (storage/db.py)
            "roles": [it.role for it in items],
            "actors": [it.actor_id for it in items],
            "ords": [it.index for it in items],
            "project_id": project_id,
            "user_id": scope.user_id,
            "agent_id": scope.agent_id,
            "app_id": scope.app_id,
            "run_id": scope.run_id,
            "metadata": _json(metadata),
            "categories": categories,
            "immutable": immutable,
            "expiration_date": expiration_date,
            "created_at": created_at,
            "event_id": event_id,
            "payload": _json(event_payload),
            "history_input": _json(history_input),
            "entity_types": [t for t, _ in entities],
            "entity_names": [n for _, n in entities],
        }
        rows = (await self.conn.execute(_ADD_VERBATIM, params)).all()
        return [AddOutcome(index=r.ord, id=r.id, text=r.memory, event=r.event) for r in rows]

    async def get_for_update(self, project_id: uuid.UUID, memory_ids: Sequence[uuid.UUID]) -> list[Any]:
        stmt = select(*READ_COLUMNS).where(M.c.project_id == project_id, M.c.id.in_(list(memory_ids))).with_for_update()
        return list((await self.conn.execute(stmt)).all())

    async def update(
        self,
        project_id: uuid.UUID,
        memory_id: uuid.UUID,
        values: dict[str, Any],
        *,
        old_text: str,
        new_text: str,
        history_input: list[dict[str, Any]] | None = None,
    ) -> Any:
        """Apply changed columns and write an UPDATE history row; returns the updated row."""
        params: dict[str, Any] = {}
        sets = ["updated_at = now()"]
        for col, value in values.items():
            if col == "embedding":
                sets.append("embedding = CAST(:embedding AS vector)")
                params["embedding"] = Vector(value)
            elif col == "metadata":
                sets.append("metadata = CAST(:metadata AS jsonb)")
                params["metadata"] = _json(value)
            else:
                sets.append(f"{col} = :{col}")
                params[col] = value
        cols = ", ".join(c.name for c in READ_COLUMNS)
        sql = f"""
        WITH upd AS (
            UPDATE memories SET {", ".join(sets)}
            WHERE project_id = :project_id AND id = :memory_id
            RETURNING {cols}
        ),
        hist AS (
            INSERT INTO memory_history (id, project_id, memory_id, event, old_memory, new_memory, input,
                user_id, agent_id, app_id, run_id, categories, metadata, created_at, updated_at)
            SELECT gen_random_uuid(), :project_id, upd.id, 'UPDATE', :old_text, :new_text,
                CAST(:history_input AS jsonb), upd.user_id, upd.agent_id, upd.app_id, upd.run_id, upd.categories,
                upd.metadata, now(), now()
            FROM upd
        )
        SELECT * FROM upd
        """
        params.update(
            project_id=project_id,
            memory_id=memory_id,
            old_text=old_text,
            new_text=new_text,
            history_input=_json(history_input or []),
        )
        return (await self.conn.execute(text(sql), params)).one()

    async def delete_where(self, project_id: uuid.UUID, where: ColumnElement[bool]) -> int:
        """Delete matching memories and write a DELETE history row for each; returns the count."""
        deleted = (
            delete(M)
            .where(M.c.project_id == project_id, where)
            .returning(
                M.c.id,
                M.c.memory,
                M.c.user_id,
                M.c.agent_id,
                M.c.app_id,
                M.c.run_id,
                M.c.categories,
                M.c.metadata,
            )
            .cte("deleted")
        )
        hist = (
            insert(H)
            .from_select(
                [
                    "id",
                    "project_id",
                    "memory_id",
                    "event",
                    "old_memory",
                    "new_memory",
                    "user_id",
                    "agent_id",
                    "app_id",
                    "run_id",
                    "categories",
                    "metadata",
                ],
                select(
                    func.gen_random_uuid(),
                    bindparam("pid", project_id),
                    deleted.c.id,
                    literal_column("'DELETE'"),
                    deleted.c.memory,
                    literal_column("NULL"),
                    deleted.c.user_id,
                    deleted.c.agent_id,
                    deleted.c.app_id,
                    deleted.c.run_id,
                    deleted.c.categories,
                    deleted.c.metadata,
                ),
            )
            .cte("hist")
        )
        stmt = select(func.count()).select_from(deleted).add_cte(hist)
        return int((await self.conn.execute(stmt)).scalar_one())

    async def linked_ids(self, project_id: uuid.UUID, memory_id: uuid.UUID) -> list[uuid.UUID]:
        """Memories superseded by this one, transitively (the `replaced_by` chain)."""
        rows = await self.conn.execute(
            text(
                """
                WITH RECURSIVE chain(id) AS (
                    SELECT id FROM memories WHERE project_id = :p AND replaced_by = :id
                    UNION
                    SELECT m.id FROM memories m JOIN chain c ON m.replaced_by = c.id WHERE m.project_id = :p
                )
                SELECT id FROM chain
                """
            ),
            {"p": project_id, "id": memory_id},
        )
        return [r.id for r in rows]

    # ------------------------------------------------------------------------------------------
    # reads
    # ------------------------------------------------------------------------------------------
    async def get(self, project_id: uuid.UUID, memory_id: uuid.UUID) -> Any | None:
        stmt = select(*READ_COLUMNS).where(M.c.project_id == project_id, M.c.id == memory_id)
        return (await self.conn.execute(stmt)).first()

    def _list_stmt(self, project_id: uuid.UUID, where: ColumnElement[bool] | None, show_expired: bool) -> Select[Any]:
        conds: list[ColumnElement[bool]] = [M.c.project_id == project_id]
        if where is not None:
            conds.append(where)
        if not show_expired:
            conds.append(not_expired())
        return select(*READ_COLUMNS, func.count().over().label("total")).where(and_(true(), *conds))

    async def list(
        self,
        project_id: uuid.UUID,
        where: ColumnElement[bool] | None,
        *,
        limit: int,
        offset: int,
        show_expired: bool = False,
    ) -> tuple[list[Any], int]:
        """One page, newest first, plus the total count (one round trip)."""
        stmt = (
            self._list_stmt(project_id, where, show_expired)
            .order_by(M.c.created_at.desc(), M.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = list((await self.conn.execute(stmt)).all())
        total = rows[0].total if rows else 0
        if not rows and offset > 0:
            total = int(
                (
                    await self.conn.execute(
                        select(func.count()).select_from(self._list_stmt(project_id, where, show_expired).subquery())
                    )
                ).scalar_one()
            )
        return rows, total

    async def count(self, project_id: uuid.UUID, where: ColumnElement[bool] | None) -> int:
        stmt = select(func.count()).select_from(M).where(M.c.project_id == project_id)
        if where is not None:
            stmt = stmt.where(where)
        return int((await self.conn.execute(stmt)).scalar_one())

    async def history(self, project_id: uuid.UUID, memory_id: uuid.UUID) -> list[Any]:
        stmt = (
            select(H).where(H.c.project_id == project_id, H.c.memory_id == memory_id).order_by(H.c.created_at, H.c.id)
        )
        return list((await self.conn.execute(stmt)).all())

    async def history_page(self, project_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[Any], int]:
        stmt = (
            select(H, func.count().over().label("total"))
            .where(H.c.project_id == project_id)
            .order_by(H.c.created_at.desc(), H.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = list((await self.conn.execute(stmt)).all())
        total = rows[0].total if rows else await self._history_count(project_id)
        return rows, total

    async def _history_count(self, project_id: uuid.UUID) -> int:
        stmt = select(func.count()).select_from(H).where(H.c.project_id == project_id)
        return int((await self.conn.execute(stmt)).scalar_one())
