"""All SQL for memories and their history. Every method takes the project id."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, Select, and_, func, literal_column, or_, select, text, true

from memserver.domain.filters import Node
from memserver.domain.rows.memories import HistoryPageRow, HistoryRow, MemoryPageRow, MemoryRow
from memserver.domain.scope import entity_column
from memserver.storage.filters import compile_filter
from memserver.storage.models import Event, Memory, MemoryHistory, table_of
from memserver.storage.repositories.base import Repository

M = table_of(Memory)
H = table_of(MemoryHistory)
EV = table_of(Event)

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
    M.c.provenance,
    M.c.event_start,
    M.c.event_end,
    M.c.created_at,
    M.c.updated_at,
]

# A history row's `input`: the messages of the add that caused it, stored once on its event
# (rows written before that was so carry their own copy).
_HISTORY_INPUT = func.coalesce(H.c.input, EV.c.payload["messages"], literal_column("'[]'::jsonb")).label("input")
# (never the vector a change took away: it serves `as_of` search only)
_HISTORY_COLUMNS = [c for c in H.c if c.name not in ("input", "old_embedding")] + [_HISTORY_INPUT]
_HISTORY_FROM = H.outerjoin(EV, and_(EV.c.id == H.c.event_id, EV.c.project_id == H.c.project_id))


def not_expired() -> ColumnElement[bool]:
    """Expiry is inclusive of the date and evaluated in UTC."""
    return or_(M.c.expiration_date.is_(None), M.c.expiration_date >= literal_column("CURRENT_DATE"))


def where_of(node: Node | None) -> ColumnElement[bool] | None:
    return None if node is None else compile_filter(node)


def by_ids(ids: Sequence[uuid.UUID]) -> ColumnElement[bool]:
    return M.c.id.in_(list(ids))


def by_entity(etype: str, name: str) -> ColumnElement[bool]:
    return M.c[entity_column(etype)] == name


def vector_literal(vec: NDArray[np.float32] | Sequence[float]) -> str:
    """pgvector's text form (for raw SQL clients such as the benchmarks; the API sends binary)."""
    return "[" + ",".join(map(str, np.asarray(vec, dtype=np.float32).tolist())) + "]"


class MemoryRepository(Repository):
    # ------------------------------------------------------------------------------------------
    # locks and links (for the write path's callers)
    # ------------------------------------------------------------------------------------------
    async def get_for_update(self, project_id: uuid.UUID, memory_ids: Sequence[uuid.UUID]) -> list[MemoryRow]:
        stmt = select(*READ_COLUMNS).where(M.c.project_id == project_id, M.c.id.in_(list(memory_ids))).with_for_update()
        return cast(list[MemoryRow], list((await self.conn.execute(stmt)).all()))

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
    async def get(self, project_id: uuid.UUID, memory_id: uuid.UUID) -> MemoryRow | None:
        stmt = select(*READ_COLUMNS).where(M.c.project_id == project_id, M.c.id == memory_id)
        return cast(MemoryRow | None, (await self.conn.execute(stmt)).first())

    async def get_many(self, project_id: uuid.UUID, memory_ids: Sequence[uuid.UUID]) -> list[MemoryRow]:
        stmt = select(*READ_COLUMNS).where(M.c.project_id == project_id, M.c.id.in_(list(memory_ids)))
        return cast(list[MemoryRow], list((await self.conn.execute(stmt)).all()))

    def _list_stmt(self, project_id: uuid.UUID, node: Node | None, show_expired: bool) -> Select[Any]:
        conds: list[ColumnElement[bool]] = [M.c.project_id == project_id]
        where = where_of(node)
        if where is not None:
            conds.append(where)
        if not show_expired:
            conds.append(not_expired())
        return select(*READ_COLUMNS, func.count().over().label("total")).where(and_(true(), *conds))

    async def list(
        self,
        project_id: uuid.UUID,
        node: Node | None,
        *,
        limit: int,
        offset: int,
        show_expired: bool = False,
    ) -> tuple[list[MemoryPageRow], int]:
        """One page, newest first, plus the total count (one round trip)."""
        stmt = (
            self._list_stmt(project_id, node, show_expired)
            .order_by(M.c.created_at.desc(), M.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = cast(list[MemoryPageRow], list((await self.conn.execute(stmt)).all()))
        total = rows[0].total if rows else 0
        if not rows and offset > 0:
            total = int(
                (
                    await self.conn.execute(
                        select(func.count()).select_from(self._list_stmt(project_id, node, show_expired).subquery())
                    )
                ).scalar_one()
            )
        return rows, total

    async def scopes_of(
        self, project_id: uuid.UUID, memory_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, builtins.list[dict[str, str | None]]]:
        """The entity ids each memory carries, deleted ones included (from their history rows)."""
        ids = builtins.list(memory_ids)
        cols = ("user_id", "agent_id", "app_id", "run_id")
        live = select(M.c.id, *(M.c[c] for c in cols)).where(M.c.project_id == project_id, M.c.id.in_(ids))
        past = select(H.c.memory_id, *(H.c[c] for c in cols)).where(
            H.c.project_id == project_id, H.c.memory_id.in_(ids)
        )
        out: dict[uuid.UUID, builtins.list[dict[str, str | None]]] = {}
        for row in (await self.conn.execute(live.union(past))).all():
            out.setdefault(row[0], []).append(dict(zip(cols, row[1:], strict=True)))
        return out

    async def history(self, project_id: uuid.UUID, memory_id: uuid.UUID) -> builtins.list[HistoryRow]:
        stmt = (
            select(*_HISTORY_COLUMNS)
            .select_from(_HISTORY_FROM)
            .where(H.c.project_id == project_id, H.c.memory_id == memory_id)
            .order_by(H.c.created_at, H.c.id)
        )
        return cast(list[HistoryRow], list((await self.conn.execute(stmt)).all()))

    async def history_page(
        self, project_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[builtins.list[HistoryPageRow], int]:
        stmt = (
            select(*_HISTORY_COLUMNS, func.count().over().label("total"))
            .select_from(_HISTORY_FROM)
            .where(H.c.project_id == project_id)
            .order_by(H.c.created_at.desc(), H.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = cast(list[HistoryPageRow], list((await self.conn.execute(stmt)).all()))
        total = rows[0].total if rows else await self._history_count(project_id)
        return rows, total

    async def _history_count(self, project_id: uuid.UUID) -> int:
        stmt = select(func.count()).select_from(H).where(H.c.project_id == project_id)
        return int((await self.conn.execute(stmt)).scalar_one())
