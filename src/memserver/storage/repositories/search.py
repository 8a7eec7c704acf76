"""Retrieval SQL: dense (pgvector) candidates and keyword candidates within a project scope."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, and_, bindparam, func, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from memserver.storage.repositories.memories import READ_COLUMNS, M, not_expired


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

    async def dense(
        self,
        project_id: uuid.UUID,
        where: ColumnElement[bool] | None,
        query_vector: NDArray[np.float32],
        *,
        limit: int,
        exact: bool,
        show_expired: bool = False,
    ) -> list[Any]:
        """Nearest memories by cosine similarity.

        exact=True scans the (index-filtered) scope and sorts, which is both exact and fastest
        for a user's or run's memories. exact=False walks the HNSW index with iterative scans, for
        project-wide scopes too large to sort.
        """
        q = bindparam("qvec", query_vector, type_=M.c.embedding.type)
        distance = M.c.embedding.cosine_distance(q)
        conds = self._conds(project_id, where, show_expired)
        if exact:
            # "+ 0" hides the ORDER BY from the HNSW index, so the planner filters first.
            stmt = (
                select(*READ_COLUMNS, (1 - distance).label("similarity"))
                .where(and_(true(), *conds))
                .order_by(distance + 0)
                .limit(limit)
            )
            return list((await self.conn.execute(stmt)).all())
        inner = (
            select(*READ_COLUMNS, distance.label("distance"))
            .where(and_(true(), *conds))
            .order_by(distance)
            .limit(limit)
            .cte("ann")
            .prefix_with("MATERIALIZED")
        )
        # relaxed_order iterative scans may return slightly out of order: sort the small result again.
        stmt = select(inner, (1 - inner.c.distance).label("similarity")).order_by(inner.c.distance)
        return list((await self.conn.execute(stmt)).all())
