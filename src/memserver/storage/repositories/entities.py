"""Entities (users, agents, apps, runs) of a project; created implicitly by adds."""

from __future__ import annotations

import uuid
from typing import Any, cast

import orjson
from sqlalchemy import text

from memserver.domain.rows.entities import EntityCountRow, EntityRefRow, EntityRow
from memserver.storage.repositories.base import Repository

_COUNT = """
    (SELECT count(*) FROM memories m WHERE m.project_id = e.project_id AND
        CASE e.type WHEN 'user' THEN m.user_id = e.name WHEN 'agent' THEN m.agent_id = e.name
                    WHEN 'app' THEN m.app_id = e.name ELSE m.run_id = e.name END) AS total_memories
"""


class EntityRepository(Repository):
    async def list(
        self, project_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[list[EntityCountRow], dict[str, int]]:
        rows = list(
            (
                await self.conn.execute(
                    text(
                        f"""
                        SELECT e.id, e.type, e.name, e.metadata, e.created_at, e.updated_at, {_COUNT}
                        FROM entities e WHERE e.project_id = :p
                        ORDER BY e.updated_at DESC, e.id DESC LIMIT :limit OFFSET :offset
                        """
                    ),
                    {"p": project_id, "limit": limit, "offset": offset},
                )
            ).all()
        )
        totals = {
            r.type: r.n
            for r in await self.conn.execute(
                text("SELECT type, count(*) AS n FROM entities WHERE project_id = :p GROUP BY type"),
                {"p": project_id},
            )
        }
        return cast(list[EntityCountRow], rows), totals

    async def get(self, project_id: uuid.UUID, entity_type: str, name: str) -> EntityCountRow | None:
        row = (
            await self.conn.execute(
                text(
                    f"""
                    SELECT e.id, e.type, e.name, e.metadata, e.created_at, e.updated_at, {_COUNT}
                    FROM entities e WHERE e.project_id = :p AND e.type = :t AND e.name = :n
                    """
                ),
                {"p": project_id, "t": entity_type, "n": name},
            )
        ).first()
        return cast(EntityCountRow | None, row)

    async def get_by_id(self, project_id: uuid.UUID, entity_type: str, entity_id: int) -> EntityRefRow | None:
        row = (
            await self.conn.execute(
                text("SELECT id, type, name FROM entities WHERE project_id = :p AND type = :t AND id = :id"),
                {"p": project_id, "t": entity_type, "id": entity_id},
            )
        ).first()
        return cast(EntityRefRow | None, row)

    async def upsert(
        self, project_id: uuid.UUID, entity_type: str, name: str, metadata: dict[str, Any] | None
    ) -> EntityRow:
        row = (
            await self.conn.execute(
                text(
                    """
                    INSERT INTO entities (project_id, type, name, metadata) VALUES (:p, :t, :n, CAST(:m AS jsonb))
                    ON CONFLICT (project_id, type, name) DO UPDATE
                        SET metadata = COALESCE(EXCLUDED.metadata, entities.metadata), updated_at = now()
                    RETURNING id, type, name, metadata, created_at, updated_at
                    """
                ),
                {
                    "p": project_id,
                    "t": entity_type,
                    "n": name,
                    "m": None if metadata is None else orjson.dumps(metadata).decode(),
                },
            )
        ).one()
        return cast(EntityRow, row)

    async def delete(self, project_id: uuid.UUID, entity_type: str, name: str) -> int:
        res = await self.conn.execute(
            text("DELETE FROM entities WHERE project_id = :p AND type = :t AND name = :n"),
            {"p": project_id, "t": entity_type, "n": name},
        )
        return int(res.rowcount)
